/**
 * keyhive's REPL commands (moleculer-repl 0.8 `customCommands`).
 *
 * Every command is a function of (broker, args, print) that never throws: bad
 * input and unreachable services come out as one line each. The REPL wires them
 * to stdout (`replCommands` below); tests call them with a real broker and a
 * print that records lines.
 */
import { randomBytes, randomUUID } from "crypto";
import type { ReplOptions, ServiceBroker } from "moleculer";
import type { ActorInfo, RuntimeStats } from "../actors/runtime";
import {
	formatCount,
	formatDuration,
	formatPercent,
	formatRate,
	formatRecord,
	formatTable,
	parseInteger,
	ProcessedTally,
	ratePerSecond,
	renderProgress,
	ringShare,
	showValue,
	UsageError,
	type Cell,
	type ProgressState,
} from "./format";

// ---- output ------------------------------------------------------------------

/**
 * Where a command writes. `print(line)` writes a whole line; `progress(line,
 * final)` rewrites the current line in place (a progress bar) and ends it when
 * final. Without `progress`, only the final state of a bar is printed.
 */
export interface Print {
	(line: string): void;
	progress?: (line: string, final: boolean) => void;
}

/** The REPL's terminal: progress bars rewritten with \r on a TTY, only their last state otherwise. */
export const stdoutPrint: Print = Object.assign((line: string) => void process.stdout.write(line + "\n"), {
	progress(line: string, final: boolean) {
		if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K${final ? "\n" : ""}`);
		else if (final) process.stdout.write(line + "\n");
	},
});

/** A progress bar on one line, redrawn at most every 100 ms. */
class ProgressLine {
	private lastDraw = 0;
	private open = false;
	private last: string | null = null;

	constructor(private readonly print: Print) {}

	update(state: ProgressState): void {
		const now = Date.now();
		if (now - this.lastDraw < 100) return;
		this.lastDraw = now;
		this.last = renderProgress(state);
		if (this.print.progress) {
			this.print.progress(this.last, false);
			this.open = true;
		}
	}

	finish(state: ProgressState): void {
		this.last = renderProgress(state);
		if (this.print.progress) this.print.progress(this.last, true);
		else this.print(this.last);
		this.open = false;
	}

	/** Ends a bar left half-drawn (an error is about to be printed below it). */
	abandon(): void {
		if (this.open && this.last !== null) this.print.progress?.(this.last, true);
		this.open = false;
	}
}

// ---- calling services ------------------------------------------------------------

/** A failed call, already worded for the user. */
export class ReplError extends Error {
	constructor(
		message: string,
		readonly code: "unreachable" | "timeout" | "invalid" | "failed",
	) {
		super(message);
		this.name = "ReplError";
	}
}

interface MoleculerLikeError {
	type?: string;
	message?: string;
	data?: unknown;
}

/** One line for a failed call of action (on nodeID, when given). */
export function describeCallError(err: unknown, action: string, nodeID?: string): ReplError {
	const e = (err ?? {}) as MoleculerLikeError;
	const where = nodeID ? ` on ${nodeID}` : "";
	const service = action.split(".")[0];
	switch (e.type) {
		case "SERVICE_NOT_FOUND":
		case "SERVICE_NOT_AVAILABLE":
			return new ReplError(
				nodeID
					? `${action} is not reachable on ${nodeID}: that node runs no ${service} service (or has left)`
					: `${action} is not reachable: no available node runs the ${service} service`,
				"unreachable",
			);
		case "REQUEST_TIMEOUT":
			return new ReplError(`${action} timed out${where}`, "timeout");
		case "VALIDATION_ERROR": {
			const details = Array.isArray(e.data) ? e.data.map((d: { message?: string }) => d.message).filter(Boolean).join("; ") : "";
			return new ReplError(`${action} refused the parameters${details ? `: ${details}` : ""}`, "invalid");
		}
		default:
			return new ReplError(`${action} failed${where}: ${e.message ?? String(err)}`, "failed");
	}
}

/** Timeout of the calls a command makes to every node, so one dead node cannot hang it. */
const PER_NODE_TIMEOUT_MS = 5_000;

async function call<T>(broker: ServiceBroker, action: string, params: object, nodeID?: string): Promise<T> {
	try {
		const opts = nodeID ? { nodeID, timeout: PER_NODE_TIMEOUT_MS, retries: 0 } : {};
		return (await broker.call(action, params, opts)) as T;
	} catch (err) {
		throw describeCallError(err, action, nodeID);
	}
}

/** Like call, but a failure is a value: per-node columns show "-" or the error instead of failing the command. */
async function tryCall<T>(broker: ServiceBroker, action: string, params: object, nodeID?: string): Promise<{ ok: T } | { error: ReplError }> {
	try {
		return { ok: await call<T>(broker, action, params, nodeID) };
	} catch (err) {
		return { error: err instanceof ReplError ? err : describeCallError(err, action, nodeID) };
	}
}

/** Runs a command body; anything it throws becomes one line "<command>: <why>". */
async function guarded(name: string, print: Print, body: () => Promise<void>, progress?: () => ProgressLine | null): Promise<void> {
	try {
		await body();
	} catch (err) {
		progress?.()?.abandon();
		const message = err instanceof UsageError || err instanceof ReplError ? err.message : `unexpected error: ${(err as Error)?.message ?? String(err)}`;
		print(`${name}: ${message}`);
	}
}

// ---- what the services answer (the lib's own shapes where the action returns them as they are) ----

interface PublishReply {
	via: "rabbitmq" | "store";
	published: number;
}
interface WhoisReply {
	key: string;
	owner: string | null;
	view: string;
	state: string;
}
interface MembersReply {
	view: string;
	members: string[];
	participants: string[];
}
interface StateReply {
	node: string;
	state: string;
	view: { id: string; members: string[] };
	settled: string | null;
	waitingFor: string[];
	lastRehashMs: number | null;
}
/** worker.stats: the runtime's figures with the node and its topology state. */
type WorkerStats = RuntimeStats & { node: string; state: string };
interface StoreStats {
	node: string;
	pending: number;
	outbox: number;
	dead: number;
	processedIds: number;
	outboundKeys: number;
	shippedRows: number;
	shipFailures: number;
}
interface DeadLetter {
	id: string;
	key: string;
	reason: string;
	attempts: number;
	diedAt: number;
	payload: string;
}
interface DeadReply {
	node: string;
	count: number;
	dead: DeadLetter[];
}
interface RequeueReply {
	node: string;
	requeued: number;
	/** Dead letters whose id was processed since: deleted, not requeued. */
	dropped: number;
}
interface IngestStatus {
	connected: boolean;
	queue: string;
	deadQueue: string;
	deadQueueDepth: number | null;
}

/** Arguments as the REPL hands them over: named positionals plus `options`. */
export interface ReplArgs {
	options?: Record<string, unknown>;
	[name: string]: unknown;
}

function optionsOf(args: ReplArgs): Record<string, unknown> {
	return args.options ?? {};
}

function requiredText(args: ReplArgs, name: string): string {
	const value = args[name];
	const text = Array.isArray(value) ? value.join(" ") : value === undefined || value === null ? "" : String(value);
	if (text.trim() === "") throw new UsageError(`<${name}> is required`);
	return text;
}

/** Ring points: the REPL node's configuration, which every node must share. */
function ringPointsOf(broker: ServiceBroker): number {
	return (broker.options as { keyhive?: { ringPoints?: number } }).keyhive?.ringPoints ?? 160;
}

async function membersOf(broker: ServiceBroker): Promise<MembersReply> {
	return call<MembersReply>(broker, "topology.members", {});
}

// ---- publish ----------------------------------------------------------------------------

export async function publishCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	await guarded("publish", print, async () => {
		const key = requiredText(args, "key");
		const payload = requiredText(args, "payload");
		const id = `repl-${randomUUID()}`;
		const reply = await call<PublishReply>(broker, "ingest.publish", { messages: [{ id, key, payload }] });
		print(`published ${formatCount(reply.published)} message${reply.published === 1 ? "" : "s"} via ${reply.via} (key ${key}, id ${id})`);
		if (reply.published === 0) print("publish: nothing was stored: that id was already taken (a duplicate)");
	});
}

// ---- load -------------------------------------------------------------------------------

const DEFAULT_BATCH = 1000;
const DEFAULT_WAIT_S = 30;
const WAIT_POLL_MS = 200;

/** Reads every worker's processed counter; a node that does not answer keeps its last value. */
async function observeProcessed(broker: ServiceBroker, tally: ProcessedTally): Promise<number> {
	const members = await tryCall<MembersReply>(broker, "topology.members", {});
	const nodes = "ok" in members ? members.ok.members : tally.nodes();
	await Promise.all(
		nodes.map(async (nodeID) => {
			const stats = await tryCall<WorkerStats>(broker, "worker.stats", {}, nodeID);
			if ("ok" in stats) tally.observe(nodeID, stats.ok.processed);
		}),
	);
	return nodes.length;
}

export async function loadMessagesCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	let bar: ProgressLine | null = null;
	await guarded(
		"load",
		print,
		async () => {
			const o = optionsOf(args);
			const total = parseInteger(o.messages, "--messages", { min: 1, max: 100_000_000 });
			const keys = parseInteger(o.keys, "--keys", { min: 1, max: 50_000_000 });
			const batch = parseInteger(o.batch, "--batch", { min: 1, max: 100_000, fallback: DEFAULT_BATCH });
			const waitS = parseInteger(o.wait, "--wait", { min: 0, max: 86_400, fallback: DEFAULT_WAIT_S });
			const runId = randomBytes(4).toString("hex");

			// Baseline before the first message, so only this run's work is counted.
			const members = await membersOf(broker);
			const tally = new ProcessedTally();
			await observeProcessed(broker, tally);
			tally.startCounting();

			print(`load ${runId}: ${formatCount(total)} messages over keys key_1..key_${keys}, ${formatCount(batch)} per call`);
			const started = Date.now();
			const via = new Set<string>();
			let published = 0;
			let sent = 0;
			bar = new ProgressLine(print);
			while (sent < total) {
				const count = Math.min(batch, total - sent);
				const messages = Array.from({ length: count }, (_, j) => {
					const i = sent + j;
					return { id: `load-${runId}-${i}`, key: `key_${(i % keys) + 1}`, payload: JSON.stringify({ i }) };
				});
				let reply: PublishReply;
				try {
					reply = await call<PublishReply>(broker, "ingest.publish", { messages });
				} catch (err) {
					throw new ReplError(`${(err as Error).message} (after ${formatCount(sent)} of ${formatCount(total)} were sent)`, "failed");
				}
				sent += count;
				published += reply.published;
				via.add(reply.via);
				bar.update({ label: "publish", done: sent, total, elapsedMs: Date.now() - started });
			}
			const publishMs = Date.now() - started;
			bar.finish({ label: "publish", done: sent, total, elapsedMs: publishMs });
			print(
				`published ${formatCount(published)} messages in ${formatDuration(publishMs)}: ${formatRate(ratePerSecond(published, publishMs))} (via ${[...via].join(", ")})`,
			);
			if (published < total) print(`load: ${formatCount(total - published)} were duplicates and not stored`);

			if (members.members.length === 0) {
				print("load: not waiting: no node runs the worker service, so the messages wait in the store");
				return;
			}
			const target = published;
			bar = new ProgressLine(print);
			let lastDelta = tally.delta();
			let lastProgressAt = Date.now();
			for (;;) {
				await observeProcessed(broker, tally);
				const delta = tally.delta();
				const now = Date.now();
				if (delta > lastDelta) {
					lastDelta = delta;
					lastProgressAt = now;
				}
				const state = { label: "process", done: delta, total: target, elapsedMs: now - started };
				if (delta >= target) {
					bar.finish(state);
					print(
						`processed ${formatCount(delta)} of ${formatCount(target)} in ${formatDuration(now - started)} since the first publish: ${formatRate(ratePerSecond(delta, now - started))}`,
					);
					return;
				}
				if (now - lastProgressAt >= waitS * 1000) {
					bar.finish(state);
					print(
						`load: stopped waiting after ${waitS} s without progress: processed ${formatCount(delta)} of ${formatCount(target)} (${formatRate(ratePerSecond(delta, now - started))}); the rest is still pending`,
					);
					return;
				}
				bar.update(state);
				await new Promise((resolve) => setTimeout(resolve, WAIT_POLL_MS));
			}
		},
		() => bar,
	);
}

// ---- actor ---------------------------------------------------------------------------

export async function actorCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	await guarded("actor", print, async () => {
		const id = requiredText(args, "id");
		const info = await call<ActorInfo | null>(broker, "worker.get", { id });
		if (info === null || info === undefined) {
			print(`no actor ${id}`);
			return;
		}
		const lines = formatTable(
			["field", "value"],
			[
				["id", info.id],
				["payload", showValue(info.payload, 80)],
				["timeout", info.timeout > 0 ? `${formatCount(info.timeout)} ms` : "none (performs on messages only)"],
				["node", info.node],
				["busy", info.busy ? "yes" : "no"],
				["pending", formatCount(info.pending)],
				["last perform", info.lastPerformAgoMs === null ? "never" : `${formatDuration(info.lastPerformAgoMs)} ago`],
			],
			["left", "left"],
		);
		for (const line of lines) print(line);
	});
}

// ---- whois ---------------------------------------------------------------------------

export async function whoisCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	await guarded("whois", print, async () => {
		const key = requiredText(args, "key");
		const reply = await call<WhoisReply>(broker, "topology.whois", { key });
		const owner = reply.owner ?? `nobody (the cluster is ${reply.state}: no member owns keys)`;
		for (const line of formatRecord([
			["key", reply.key],
			["owner", owner],
			["view", reply.view],
			["state", reply.state],
		]))
			print(line);
	});
}

// ---- cluster -------------------------------------------------------------------------

/** How long cluster waits between its two samples of `processed`. */
export const RATE_SAMPLE_MS = 1000;

export async function clusterCommand(broker: ServiceBroker, _args: ReplArgs, print: Print, sampleMs = RATE_SAMPLE_MS): Promise<void> {
	await guarded("cluster", print, async () => {
		const members = await membersOf(broker);
		const nodes = [...new Set([...members.participants, ...members.members])].sort();
		if (nodes.length === 0) {
			print(`view ${members.view}: no keyhive node answered (no store or worker service is available)`);
			return;
		}
		const sampleWorker = async (nodeID: string) => {
			const worker = await tryCall<WorkerStats>(broker, "worker.stats", {}, nodeID);
			return { worker, at: Date.now() };
		};
		const first = await Promise.all(
			nodes.map(async (nodeID) => {
				const [state, sample, store] = await Promise.all([
					tryCall<StateReply>(broker, "topology.state", {}, nodeID),
					sampleWorker(nodeID),
					tryCall<StoreStats>(broker, "store.stats", {}, nodeID),
				]);
				return { nodeID, state, worker: sample.worker, at: sample.at, store };
			}),
		);
		await new Promise((resolve) => setTimeout(resolve, sampleMs));
		const second = await Promise.all(first.map((row) => sampleWorker(row.nodeID)));

		const share = ringShare(members.members, ringPointsOf(broker));
		const states = new Map<string, string>();
		const rows: Cell[][] = first.map((row, i) => {
			const state = "ok" in row.state ? row.state.ok : null;
			const w1 = "ok" in row.worker ? row.worker.ok : null;
			const w2 = "ok" in second[i].worker ? (second[i].worker as { ok: WorkerStats }).ok : null;
			const store = "ok" in row.store ? row.store.ok : null;
			const stateText = state ? state.state + (state.view.id !== members.view ? ` (view ${state.view.id})` : "") : "unreachable";
			states.set(row.nodeID, stateText);
			const rate = w1 && w2 ? Math.max(0, ratePerSecond(w2.processed - w1.processed, second[i].at - row.at)) : null;
			const ringFraction = share.get(row.nodeID);
			return [
				row.nodeID + (row.nodeID === broker.nodeID ? " (*)" : ""),
				stateText,
				w1?.actors ?? null,
				w1?.processed ?? null,
				store?.pending ?? null,
				store?.shippedRows ?? null,
				rate === null ? null : Math.round(rate),
				store?.dead ?? null,
				ringFraction === undefined ? null : formatPercent(ringFraction),
			];
		});

		const distinct = [...new Set(states.values())];
		const stateLine = distinct.length === 1 ? distinct[0] : `mixed (${[...states].map(([n, s]) => `${n}: ${s}`).join(", ")})`;
		print(`view ${members.view}  ·  ${members.members.length} member${members.members.length === 1 ? "" : "s"}  ·  state ${stateLine}`);
		const waiting = new Set<string>();
		for (const row of first) if ("ok" in row.state) for (const w of row.state.ok.waitingFor) waiting.add(w);
		if (waiting.size > 0) print(`handoff: waiting for ${[...waiting].sort().join(", ")}`);
		for (const line of formatTable(
			["node", "state", "actors", "processed", "pending", "shipped", "proc/s", "dead", "ring"],
			rows,
			["left", "left", "right", "right", "right", "right", "right", "right", "right"],
		))
			print(line);
		const unreachable = first.filter((row) => "error" in row.state).map((row) => ("error" in row.state ? row.state.error.message : ""));
		for (const message of unreachable) print(`cluster: ${message}`);
	});
}

// ---- dead ------------------------------------------------------------------------------

export async function deadCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	await guarded("dead", print, async () => {
		const o = optionsOf(args);
		const limit = o.limit === undefined ? undefined : parseInteger(o.limit, "--limit", { min: 1, max: 100_000 });
		const requeue = o.requeue === true || o.requeue === "true";
		const members = await membersOf(broker);
		const nodes = [...new Set([...members.participants, ...members.members])].sort();
		if (nodes.length === 0) print("dead: no keyhive node answered (no store service is available)");

		if (requeue) {
			let total = 0;
			for (const nodeID of nodes) {
				const reply = await tryCall<RequeueReply>(broker, "store.dead", { ...(limit ? { limit } : {}), requeue: true }, nodeID);
				if ("error" in reply) {
					print(`dead: ${reply.error.message}`);
					continue;
				}
				total += reply.ok.requeued;
				const dropped = reply.ok.dropped > 0 ? ` (${formatCount(reply.ok.dropped)} already processed, dropped)` : "";
				print(`${nodeID}: requeued ${formatCount(reply.ok.requeued)} dead letter${reply.ok.requeued === 1 ? "" : "s"}${dropped}`);
			}
			print(`requeued ${formatCount(total)} in all; they are pending again and go last in their keys' order`);
		} else {
			const rows: Cell[][] = [];
			let total = 0;
			const notes: string[] = [];
			for (const nodeID of nodes) {
				const reply = await tryCall<DeadReply>(broker, "store.dead", limit ? { limit } : {}, nodeID);
				if ("error" in reply) {
					notes.push(`dead: ${reply.error.message}`);
					continue;
				}
				total += reply.ok.count;
				if (reply.ok.count > reply.ok.dead.length) notes.push(`${nodeID}: showing ${reply.ok.dead.length} of ${formatCount(reply.ok.count)} (use --limit)`);
				for (const d of reply.ok.dead) {
					rows.push([nodeID, d.id, d.key, d.reason, d.attempts, new Date(d.diedAt).toISOString(), showValue(d.payload, 40)]);
				}
			}
			print(`${formatCount(total)} dead letter${total === 1 ? "" : "s"} in the stores of ${nodes.length} node${nodes.length === 1 ? "" : "s"}`);
			if (rows.length > 0) {
				for (const line of formatTable(["node", "id", "key", "reason", "attempts", "died at", "payload"], rows)) print(line);
			}
			for (const note of notes) print(note);
		}

		const status = await tryCall<IngestStatus>(broker, "ingest.status", {});
		if ("error" in status) print(`RabbitMQ not connected (${status.error.message})`);
		else if (!status.ok.connected) print("RabbitMQ not connected");
		else {
			const depth = status.ok.deadQueueDepth;
			print(`RabbitMQ dead-letter queue ${status.ok.deadQueue}: ${depth === null || depth === undefined ? "unknown" : formatCount(depth)} message${depth === 1 ? "" : "s"}`);
		}
	});
}

// ---- the built-in `load` -----------------------------------------------------------------

type Program = {
	command(spec: string, ...rest: unknown[]): unknown;
	createCommand(name: string): unknown;
};
type BrokerLike = unknown;
interface BuiltinLoadModule {
	register(program: Program, broker: BrokerLike): void;
	declaration(program: Program, broker: BrokerLike, loadHandler: unknown, loadFolderHandler: unknown): void;
	loadHandler(broker: BrokerLike, args: { servicePath: string; options: Record<string, unknown>; rawCommand?: string }): Promise<void>;
	loadFolderHandler: unknown;
}

const TAKEN = Symbol.for("keyhive.repl.builtinLoadTaken");

/**
 * Why `load` needs this, and how it is done.
 *
 * moleculer-repl 0.8 registers a built-in `load <servicePath>` (load a service
 * file), skips any custom command whose name is taken (src/index.js, "already
 * exists. Skipping..."), and commander 14 refuses a second command or alias of
 * one name; there is no option to replace a built-in. What the library does
 * expose: every built-in lives in its own module, src/commands/load.js, which
 * exports `register(program, broker)`, `declaration(program, broker,
 * loadHandler, loadFolderHandler)` and both handlers, and the REPL looks
 * `register` up in that module when it starts (src/commands/index.js), which is
 * after moleculer.config.ts has imported this file.
 *
 * So this replaces that module's `register` with one that runs the library's
 * own `declaration` but builds its `load` command detached (commander's public
 * `createCommand`), so it never reaches the program; `loadFolder` is declared
 * exactly as before. The name `load` is then free and our `load [servicePath]`
 * registers as an ordinary custom command: with --messages it is the keyhive
 * load generator; with a service path it calls the library's own `loadHandler`,
 * so loading a service file behaves as it always did.
 *
 * Returns the built-in handler, or null when the module does not look like that
 * (another moleculer-repl version): then ours is registered as `load-messages`
 * and the built-in `load` stays untouched.
 */
function takeOverBuiltinLoad(): BuiltinLoadModule["loadHandler"] | null {
	let mod: BuiltinLoadModule & { [TAKEN]?: boolean };
	try {
		mod = require("moleculer-repl/src/commands/load.js");
	} catch {
		return null;
	}
	if (!mod || typeof mod.declaration !== "function" || typeof mod.loadHandler !== "function" || typeof mod.loadFolderHandler !== "function") return null;
	if (!mod[TAKEN]) {
		mod.register = (program: Program, broker: BrokerLike) => {
			const withoutLoad = Object.create(program, {
				command: {
					value: (spec: string, ...rest: unknown[]) => (/^load(\s|$)/.test(spec) ? program.createCommand("load") : program.command(spec, ...rest)),
				},
			}) as Program;
			mod.declaration(withoutLoad, broker, mod.loadHandler, mod.loadFolderHandler);
		};
		mod[TAKEN] = true;
	}
	return mod.loadHandler;
}

const builtinLoad = takeOverBuiltinLoad();

/** The name our load generator registers under: `load`, or `load-messages` when the built-in could not be taken over. */
export const LOAD_COMMAND_NAME = builtinLoad ? "load" : "load-messages";

/** `load`: --messages runs the load generator; a service path loads that file as the built-in did. */
export async function loadCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	const o = optionsOf(args);
	const servicePath = typeof args.servicePath === "string" && args.servicePath !== "" ? args.servicePath : undefined;
	const generator = o.messages !== undefined || o.keys !== undefined;
	if (generator && servicePath) {
		print(`load: give either --messages/--keys (publish test messages) or a service file to load, not both`);
		return;
	}
	if (generator || !builtinLoad) return loadMessagesCommand(broker, args, print);
	if (!servicePath) {
		print("load: give --messages N --keys K to publish test messages, or a service file to load it (see load --help)");
		return;
	}
	await guarded("load", print, async () => {
		await builtinLoad(broker, { servicePath, options: o, rawCommand: args.rawCommand as string | undefined });
	});
}

// ---- the REPL definitions ------------------------------------------------------------------

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
function parse(_this: unknown, command: ParsedCommand): void {
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

function def(
	command: string,
	description: string,
	options: { option: string; description: string }[],
	run: (broker: ServiceBroker, args: ReplArgs, print: Print) => Promise<void>,
): CustomCommand {
	return {
		command,
		description,
		options,
		parse(this: unknown, cmd: ParsedCommand) {
			parse(this, cmd);
		},
		action: (broker, args) => run(broker, ((args ?? {}) as unknown) as ReplArgs, stdoutPrint),
	};
}

export const replCommands: CustomCommand[] = [
	def(
		"publish <key> <payload...>",
		"Publish one message for <key> via ingest.publish (RabbitMQ, else straight into the store); <payload> is text or JSON, words joined with spaces",
		[],
		publishCommand,
	),
	def(
		builtinLoad ? "load [servicePath]" : "load-messages",
		builtinLoad
			? "Publish --messages N over --keys K and wait until the cluster has processed them (progress bars, rates); load <servicePath> loads a service file"
			: "Publish --messages N over --keys K and wait until the cluster has processed them (progress bars, rates)",
		[
			{ option: "--messages <n>", description: "how many messages to publish (message i gets id load-<run>-<i> and payload {\"i\":i})" },
			{ option: "--keys <k>", description: "spread them over key_1..key_<k>: message i goes to key_((i % k) + 1)" },
			{ option: "--batch <b>", description: `messages per ingest.publish call (default ${DEFAULT_BATCH})` },
			{ option: "--wait <s>", description: `stop waiting for processing after <s> seconds without progress (default ${DEFAULT_WAIT_S})` },
		],
		builtinLoad ? loadCommand : loadMessagesCommand,
	),
	def(
		"actor <id>",
		"Show actor <id> as its owner node sees it: payload, timeout, busy, pending messages, last perform",
		[],
		actorCommand,
	),
	def("whois <key>", "Show which node owns <key>, in which view and cluster state", [], whoisCommand),
	def(
		"cluster",
		"One row per keyhive node: state, actors, processed, pending, shipped, processed/s (over 1 s), dead, ring share",
		[],
		clusterCommand,
	),
	def(
		"dead",
		"List every node's dead letters and RabbitMQ's dead-letter queue depth; --requeue puts them back to pending",
		[
			{ option: "--limit <n>", description: "dead letters per node to list or requeue (default 20)" },
			{ option: "--requeue", description: "move up to --limit dead letters per node back to pending (they go last in their key's order)" },
		],
		deadCommand,
	),
];
