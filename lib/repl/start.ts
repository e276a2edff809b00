/**
 * keyhive's REPL: moleculer-repl 0.8 with keyhive's commands as
 * `customCommands`. Nothing here runs on import; startRepl is what a node
 * with a REPL calls (moleculer.config.ts makes it the broker's `repl()`,
 * which moleculer-runner --repl calls: npm start and bin/repl).
 */
import type { ReplOptions, ServiceBroker } from "moleculer";
import { takeOverBuiltinLoad } from "./builtin-load";
import type { CommandDefinition, ReplArgs } from "./command";
import { actor } from "./commands/actor";
import { cluster } from "./commands/cluster";
import { dead } from "./commands/dead";
import { load, loadMessages } from "./commands/load";
import { publish } from "./commands/publish";
import { whois } from "./commands/whois";
import { stdoutPrint } from "./print";

/** The parts of commander's Command that the parse hook reads. */
interface ParsedCommand {
	registeredArguments: readonly { name(): string; variadic: boolean }[];
	processedArgs: unknown[];
	opts(): Record<string, unknown>;
	parent?: { rawArgs?: string[] } | null;
	params?: ReplArgs;
}

/**
 * Hands the action named positionals (a variadic one joined with spaces, so
 * `publish key_1 hello world` needs no quotes) and the declared options.
 */
function parse(command: ParsedCommand): void {
	const params: ReplArgs = { options: { ...command.opts() }, rawCommand: command.parent?.rawArgs?.slice(2).join(" ") ?? "" };
	command.registeredArguments.forEach((arg, i) => {
		const value = command.processedArgs[i];
		params[arg.name()] = Array.isArray(value) ? value.join(" ") : value;
	});
	command.params = params;
}

/**
 * A moleculer-repl custom command as moleculer's typings declare it (they type
 * `args` as string[]; moleculer-repl really passes the parsed object, ReplArgs).
 */
export type CustomCommand = NonNullable<ReplOptions["customCommands"]>[number];

function customCommand({ command, description, options, run }: CommandDefinition): CustomCommand {
	return {
		command,
		description,
		options,
		parse,
		action: (broker, args) => run(broker, (args ?? {}) as unknown as ReplArgs, stdoutPrint),
	};
}

export interface KeyhiveRepl {
	commands: CustomCommand[];
	/** `load`, or `load-messages` when moleculer-repl's built-in `load` could not be taken over. */
	loadCommandName: "load" | "load-messages";
}

/** Takes over moleculer-repl's built-in `load` (./builtin-load.ts) and gives keyhive's commands. */
export function keyhiveRepl(): KeyhiveRepl {
	const loadTaken = takeOverBuiltinLoad();
	const generator = loadTaken ? load : loadMessages;
	return {
		commands: [publish, generator, actor, whois, cluster, dead].map(customCommand),
		loadCommandName: loadTaken ? "load" : "load-messages",
	};
}

/** Starts moleculer-repl on this broker with keyhive's commands. */
export function startRepl(broker: ServiceBroker): void {
	const repl = require("moleculer-repl") as (broker: ServiceBroker, options: ReplOptions) => unknown;
	repl(broker, { ...broker.options.replOptions, customCommands: keyhiveRepl().commands });
}
