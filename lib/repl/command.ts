/**
 * What a REPL command is: a function of (broker, args, print) that never
 * throws, and the help text the REPL shows for it.
 */
import type { ServiceBroker } from "moleculer";
import { UsageError } from "./format";
import type { Print } from "./print";

/** Arguments as the REPL hands them over: named positionals plus `options`. */
export interface ReplArgs {
	options?: Record<string, unknown>;
	[name: string]: unknown;
}

export type CommandRun = (broker: ServiceBroker, args: ReplArgs, print: Print) => Promise<void>;

/** A command as the REPL registers it: commander's spec, its help text, and what runs it. */
export interface CommandDefinition {
	/** Commander's spec: the name and its positionals, e.g. "whois <key>". */
	command: string;
	description: string;
	options: { option: string; description: string }[];
	run: CommandRun;
}

export function optionsOf(args: ReplArgs): Record<string, unknown> {
	return args.options ?? {};
}

/** A positional the command cannot do without (a variadic one joined with spaces). */
export function requiredText(args: ReplArgs, name: string): string {
	const value = args[name];
	const text = Array.isArray(value) ? value.join(" ") : value === undefined || value === null ? "" : String(value);
	if (text.trim() === "") throw new UsageError(`<${name}> is required`);
	return text;
}
