/**
 * Command-line arguments of the chaos soak, checked up front: a bad one is
 * one clear sentence (the CLI prints it and exits 2).
 */
import { ACTION_KINDS, type ActionKind } from "./plan";

export interface SoakArgs {
	nodes: number;
	minutes: number;
	seed: number | undefined;
	rate: number;
	keys: number;
	actors: number;
	kinds: ActionKind[];
	keep: boolean;
	help: boolean;
}

export class ArgsError extends Error {}

export const USAGE = `usage: node --import tsx test/chaos/soak.ts --nodes N --minutes M [options]
       npm run chaos -- --nodes N --minutes M [options]

Runs N keyhive nodes on the local NATS and RabbitMQ under a steady keyed load
for M minutes while scaling out and in, SIGKILLing and restarting nodes,
freezing nodes past the heartbeat timeout (stall), SIGKILLing nodes and deleting
their data dirs for good (lose) and closing their RabbitMQ connections at seeded
random times; then drains and
checks that no message was lost, none was performed twice, every key's
messages were performed in order, and no key ran on two nodes at once.

  --nodes N        nodes at the start (2..12); up to N+2 run at once
  --minutes M      length of the chaos phase (0.25..120, decimals allowed)
  --seed S         PRNG seed (0..4294967295) to repeat a run; random (and printed) if absent
  --rate R         messages per second published (1..5000, default 300)
  --keys K         distinct keys the load spreads over (1..1000000, default 500)
  --actors A       KEYHIVE_ACTORS of every node (1..1000000, default 20000)
  --actions LIST   comma-separated subset of: ${ACTION_KINDS.join(", ")} (default all)
  --keep           keep the temp dir (data, logs, perform log) even when every check passes
  --help           this text

Exit status: 0 every check passed, 1 a check failed (the temp dir is kept and
printed), 2 bad arguments.`;

function number(name: string, raw: string | undefined, min: number, max: number, integer: boolean): number {
	if (raw === undefined || raw.startsWith("--")) throw new ArgsError(`--${name} needs a value`);
	const value = Number(raw);
	if (raw.trim() === "" || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
		throw new ArgsError(`--${name} must be ${integer ? "a whole number" : "a number"}, got "${raw}"`);
	}
	if (value < min || value > max) throw new ArgsError(`--${name} must be between ${min} and ${max}, got ${value}`);
	return value;
}

export function parseArgs(argv: string[]): SoakArgs {
	const args: SoakArgs = {
		nodes: NaN,
		minutes: NaN,
		seed: undefined,
		rate: 300,
		keys: 500,
		actors: 20_000,
		kinds: [...ACTION_KINDS],
		keep: false,
		help: false,
	};
	const seen = new Set<string>();
	for (let i = 0; i < argv.length; i++) {
		let arg = argv[i];
		let inline: string | undefined;
		const eq = arg.indexOf("=");
		if (arg.startsWith("--") && eq > 0) {
			inline = arg.slice(eq + 1);
			arg = arg.slice(0, eq);
		}
		const value = () => {
			if (inline !== undefined) return inline;
			return argv[++i];
		};
		const name = arg.replace(/^--/, "");
		if (seen.has(name)) throw new ArgsError(`--${name} is given twice`);
		seen.add(name);
		switch (arg) {
			case "--help":
			case "-h":
				args.help = true;
				break;
			case "--keep":
				args.keep = true;
				break;
			case "--nodes":
				args.nodes = number("nodes", value(), 2, 12, true);
				break;
			case "--minutes":
				args.minutes = number("minutes", value(), 0.25, 120, false);
				break;
			case "--seed":
				args.seed = number("seed", value(), 0, 0xffffffff, true);
				break;
			case "--rate":
				args.rate = number("rate", value(), 1, 5000, false);
				break;
			case "--keys":
				args.keys = number("keys", value(), 1, 1_000_000, true);
				break;
			case "--actors":
				args.actors = number("actors", value(), 1, 1_000_000, true);
				break;
			case "--actions": {
				const raw = value();
				if (raw === undefined || raw.startsWith("--") || raw.trim() === "") throw new ArgsError("--actions needs a value");
				const kinds = raw.split(",").map((k) => k.trim());
				const unknown = kinds.filter((k) => !(ACTION_KINDS as readonly string[]).includes(k));
				if (unknown.length > 0) throw new ArgsError(`--actions: unknown action ${unknown.join(", ")} (known: ${ACTION_KINDS.join(", ")})`);
				args.kinds = [...new Set(kinds)] as ActionKind[];
				break;
			}
			default:
				throw new ArgsError(`unknown argument "${argv[i]}" (see --help)`);
		}
	}
	if (args.help) return args;
	if (Number.isNaN(args.nodes)) throw new ArgsError("--nodes is required (see --help)");
	if (Number.isNaN(args.minutes)) throw new ArgsError("--minutes is required (see --help)");
	return args;
}
