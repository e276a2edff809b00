/**
 * `load --messages N --keys K`: publishes test messages and waits until the
 * cluster has processed them, with progress bars and rates. `load <servicePath>`
 * is moleculer-repl's built-in service loader, which this command takes over
 * (../builtin-load.ts).
 */
import { randomBytes } from "crypto";
import type { ServiceBroker } from "moleculer";
import type { PublishReply } from "../../contracts";
import { builtinLoadHandler } from "../builtin-load";
import { call, membersOf, tryCall } from "../call";
import { optionsOf, type CommandDefinition, type ReplArgs } from "../command";
import { guarded, ReplError } from "../errors";
import { formatCount, formatDuration, formatRate, parseInteger, ProcessedTally, ratePerSecond } from "../format";
import { ProgressLine, type Print } from "../print";

const DEFAULT_BATCH = 1000;
const DEFAULT_WAIT_S = 30;
const WAIT_POLL_MS = 200;

/** Reads every worker's processed counter; a node that does not answer keeps its last value. */
async function observeProcessed(broker: ServiceBroker, tally: ProcessedTally): Promise<number> {
	const members = await tryCall(broker, "topology.members", {});
	const nodes = "ok" in members ? members.ok.members : tally.nodes();
	await Promise.all(
		nodes.map(async (nodeID) => {
			const stats = await tryCall(broker, "worker.stats", {}, nodeID);
			if ("ok" in stats) tally.observe(nodeID, stats.ok.processed);
		}),
	);
	return nodes.length;
}

/** The load generator. */
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
					reply = await call(broker, "ingest.publish", { messages });
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

/** `load`: --messages runs the load generator; a service path loads that file as the built-in did. */
export async function loadCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	const o = optionsOf(args);
	const servicePath = typeof args.servicePath === "string" && args.servicePath !== "" ? args.servicePath : undefined;
	const generator = o.messages !== undefined || o.keys !== undefined;
	if (generator && servicePath) {
		print(`load: give either --messages/--keys (publish test messages) or a service file to load, not both`);
		return;
	}
	const builtinLoad = builtinLoadHandler();
	if (generator || !builtinLoad) return loadMessagesCommand(broker, args, print);
	if (!servicePath) {
		print("load: give --messages N --keys K to publish test messages, or a service file to load it (see load --help)");
		return;
	}
	await guarded("load", print, async () => {
		await builtinLoad(broker, { servicePath, options: o, rawCommand: args.rawCommand as string | undefined });
	});
}

const GENERATOR_HELP = "Publish --messages N over --keys K and wait until the cluster has processed them (progress bars, rates)";
const GENERATOR_OPTIONS = [
	{ option: "--messages <n>", description: 'how many messages to publish (message i gets id load-<run>-<i> and payload {"i":i})' },
	{ option: "--keys <k>", description: "spread them over key_1..key_<k>: message i goes to key_((i % k) + 1)" },
	{ option: "--batch <b>", description: `messages per ingest.publish call (default ${DEFAULT_BATCH})` },
	{ option: "--wait <s>", description: `stop waiting for processing after <s> seconds without progress (default ${DEFAULT_WAIT_S})` },
];

/** `load`, once moleculer-repl's built-in `load` has been taken over. */
export const load: CommandDefinition = {
	command: "load [servicePath]",
	description: `${GENERATOR_HELP}; load <servicePath> loads a service file`,
	options: GENERATOR_OPTIONS,
	run: loadCommand,
};

/** The load generator under a name of its own, when the built-in `load` could not be taken over. */
export const loadMessages: CommandDefinition = {
	command: "load-messages",
	description: GENERATOR_HELP,
	options: GENERATOR_OPTIONS,
	run: loadMessagesCommand,
};
