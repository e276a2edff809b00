/**
 * npm run bench:rebalance [-- --actors N --rows N --keys K]
 *
 * Three node processes hold 1,000,000 actors and a backlog of 100,000 pending
 * rows; a fourth joins. Reported: keys moved against the ideal 1/4, time from
 * the first node taking the new view to every node ready on it, rows shipped
 * and their rate, and whether any key that kept its owner paused: a gap
 * between its performs that starts in the rehash and is longer than any gap
 * seen in the 3 s before it (the baseline: CPU contention on this machine
 * while the fourth node starts) and than 5 performs.
 *
 * The demo worker runs with 100 ms of simulated work and one message per
 * perform, so the backlog is still there when the fourth node joins, and a
 * key that keeps its owner performs every ~100 ms throughout: a pause shows
 * as a gap in its performs (perform log).
 */
import * as fs from "fs";
import * as path from "path";
import { findOverlaps, parsePerformLog } from "../lib/actors/perform-log";
import { callAction } from "../lib/contracts";
import { Ring } from "../lib/ring";
import { NodeProcess, observer, waitForReady } from "../test/support/cluster";
import { uniqueName } from "../test/support/env";
import { tempDir } from "../test/support/tmp";
import { deleteQueues } from "../test/support/traffic";
import { checkArgs, demoNodeEnv, log, numberArg, printJsonLine, printTable, round, sleep } from "./support";

checkArgs(
	`npm run bench:rebalance [-- --actors N --rows N --keys K]
  --actors N    actors over the cluster (default 1,000,000)
  --rows N      pending rows when the fourth node joins (default 100,000)
  --keys K      keys those rows are spread over (default 500)
Needs NATS on 127.0.0.1:4222 and RabbitMQ; starts real node processes.`,
	["actors", "rows", "keys"],
);
const ACTORS = numberArg("actors", 1_000_000);
const ROWS = numberArg("rows", 100_000);
const KEYS = numberArg("keys", 500);
const WORK_MS = 100;
const AMQP_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

interface StateEvent {
	node: string;
	to: string;
	view: { id: string; members: string[] };
	at: number;
}

async function main(): Promise<void> {
	const name = uniqueName("rebalance");
	const dir = tempDir(name).dir;
	const performLog = path.join(dir, "performs.log");
	const env = demoNodeEnv({ name, actors: ACTORS, workMs: WORK_MS, performLog, highWater: ROWS * 4, amqpUrl: AMQP_URL });
	const broker = await observer(name);
	const events: StateEvent[] = [];
	broker.createService({
		name: "bench-listener",
		events: {
			"keyhive.topology.state"(ctx: { params: Omit<StateEvent, "at"> }) {
				events.push({ ...ctx.params, at: performance.now() });
			},
		},
	});
	const nodes = ["r1", "r2", "r3", "r4"].map((id) => new NodeProcess({ nodeID: id, dir, env }));
	try {
		log(`starting 3 nodes with ${ACTORS.toLocaleString()} actors`);
		for (const n of nodes.slice(0, 3)) n.start();
		await waitForReady(broker, ["r1", "r2", "r3"], ["r1", "r2", "r3"], 120_000);
		await waitForActors(broker, ["r1", "r2", "r3"], ACTORS);

		log(`appending ${ROWS.toLocaleString()} rows over ${KEYS} keys`);
		for (let from = 0; from < ROWS; from += 1000) {
			const messages = Array.from({ length: 1000 }, (_, i) => ({ id: `row-${from + i}`, key: `key_${((from + i) % KEYS) + 1}`, payload: "x" }));
			await broker.call("store.append", { messages }, { nodeID: "r1" });
		}
		const before = await totals(broker, ["r1", "r2", "r3"]);
		log(`${before.pending.toLocaleString()} rows pending; starting r4`);
		nodes[3].start();
		const states = await waitForReady(broker, ["r1", "r2", "r3", "r4"], ["r1", "r2", "r3", "r4"], 120_000);
		const view = states[0].view.id;
		await sleep(500);
		const after = await totals(broker, ["r1", "r2", "r3", "r4"]);

		const mine = events.filter((e) => e.view.id === view);
		const start = Math.min(...mine.filter((e) => e.to === "rehashing").map((e) => e.at));
		const end = Math.max(...mine.filter((e) => e.to === "ready").map((e) => e.at));
		const rehashMs = end - start;
		const shipped = after.shipped - before.shipped;

		const three = Ring.of(["r1", "r2", "r3"]);
		const four = Ring.of(["r1", "r2", "r3", "r4"]);
		let moved = 0;
		let movedElsewhere = 0;
		for (let i = 1; i <= ACTORS; i++) {
			const key = `key_${i}`;
			const a = three.ownerOf(key);
			const b = four.ownerOf(key);
			if (a !== b) {
				moved++;
				if (b !== "r4") movedElsewhere++;
			}
		}

		const records = parsePerformLog(fs.readFileSync(performLog, "utf8"));
		const wallStart = performance.timeOrigin + start;
		const wallEnd = performance.timeOrigin + end;
		const stableKeys = new Set(Array.from({ length: KEYS }, (_, i) => `key_${i + 1}`).filter((k) => three.ownerOf(k) === four.ownerOf(k)));
		const gap = longestGap(records, stableKeys, wallStart, wallEnd);
		// The same figure just before the view changed, while r4 was already starting (compiling, connecting)
		// on the same two cores: the gap any key sees from CPU contention alone.
		const gapBefore = longestGap(records, stableKeys, wallStart - 3000, wallStart - 1);
		// Paused by the rehash: a gap that starts inside it and is longer than any gap seen just before it (and than 5 performs).
		const pauseMs = Math.max(WORK_MS * 5, gapBefore.ms);
		const paused = keysPausedIn(records, stableKeys, wallStart, wallEnd, pauseMs);
		const overlaps = findOverlaps(records);

		const movedShare = moved / ACTORS;
		printTable(`bench:rebalance — 3 → 4 nodes, ${ACTORS.toLocaleString()} actors, ${before.pending.toLocaleString()} rows pending at the join`, [
			{ figure: "keys moved", value: moved, unit: `(${round(movedShare * 100, 1)}%)` },
			{ figure: "ideal (1/4)", value: ACTORS / 4, unit: "(25%)" },
			{ figure: "moved / ideal", value: round(movedShare / 0.25, 2), target: "≤ 1.15", pass: movedShare / 0.25 <= 1.15 },
			{ figure: "keys moved between old nodes", value: movedElsewhere, target: "0", pass: movedElsewhere === 0 },
			{ figure: "new view → ready on all nodes", value: round(rehashMs, 0), unit: "ms", target: "≤ 3000", pass: rehashMs <= 3000 },
			{ figure: "rows shipped", value: shipped },
			{ figure: "rows shipped per second (over the rehash)", value: round(shipped / (rehashMs / 1000), 0), unit: "rows/s" },
			{ figure: "stable keys with traffic", value: stableKeys.size },
			{ figure: "longest gap of a stable key, 3 s before the new view", value: round(gapBefore.ms, 0), unit: `ms (on ${gapBefore.node})` },
			{ figure: "longest gap of a stable key in the rehash", value: round(gap.ms, 0), unit: `ms (on ${gap.node})` },
			{ figure: `stable keys paused by the rehash (gap > ${round(pauseMs, 0)} ms)`, value: paused, target: "0", pass: paused === 0 },
			{ figure: "performs of one key on two nodes at once", value: overlaps.length, target: "0", pass: overlaps.length === 0 },
		]);
		printJsonLine({
			bench: "rebalance",
			actors: ACTORS,
			pendingAtJoin: before.pending,
			keysMoved: moved,
			keysMovedIdeal: ACTORS / 4,
			movedOverIdeal: round(movedShare / 0.25, 3),
			movedBetweenOldNodes: movedElsewhere,
			rehashMs: round(rehashMs, 0),
			rowsShipped: shipped,
			rowsShippedPerSec: round(shipped / (rehashMs / 1000), 0),
			stableKeyLongestGapMs: round(gap.ms, 0),
			stableKeyLongestGapBeforeMs: round(gapBefore.ms, 0),
			stableKeysPaused: paused,
			overlaps: overlaps.length,
			node: process.version,
		});
	} finally {
		await Promise.all(nodes.map((n) => n.stop(30_000)));
		await broker.stop();
		await deleteQueues(AMQP_URL, env.KEYHIVE_QUEUE, env.KEYHIVE_RESULTS_QUEUE);
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

async function waitForActors(broker: Awaited<ReturnType<typeof observer>>, nodes: string[], total: number): Promise<void> {
	for (;;) {
		const stats = await Promise.all(nodes.map((nodeID) => callAction(broker, "worker.stats", {}, { nodeID })));
		if (stats.reduce((sum, s) => sum + s.actors, 0) >= total) return;
		await sleep(200);
	}
}

async function totals(broker: Awaited<ReturnType<typeof observer>>, nodes: string[]): Promise<{ pending: number; shipped: number }> {
	const stats = await Promise.all(nodes.map((nodeID) => callAction(broker, "store.stats", {}, { nodeID })));
	return { pending: stats.reduce((s, x) => s + x.pending, 0), shipped: stats.reduce((s, x) => s + x.shippedRows, 0) };
}

/**
 * The longest time a stable key went without a perform inside [from, to]
 * (wall clock ms), counting only keys that still had work before and after.
 */
function longestGap(records: ReturnType<typeof parsePerformLog>, keys: Set<string>, from: number, to: number): { ms: number; node: string } {
	const byKey = new Map<string, { start: number; node: string }[]>();
	for (const r of records) {
		if (!keys.has(r.key)) continue;
		const list = byKey.get(r.key) ?? [];
		list.push({ start: r.start, node: r.node });
		byKey.set(r.key, list);
	}
	let longest = { ms: 0, node: "-" };
	for (const performs of byKey.values()) {
		performs.sort((a, b) => a.start - b.start);
		for (let i = 1; i < performs.length; i++) {
			if (performs[i].start < from || performs[i - 1].start > to) continue;
			const ms = performs[i].start - performs[i - 1].start;
			if (ms > longest.ms) longest = { ms, node: performs[i].node };
		}
	}
	return longest;
}

/** Stable keys with a gap between performs that starts in [from, to] and is longer than limitMs. */
function keysPausedIn(records: ReturnType<typeof parsePerformLog>, keys: Set<string>, from: number, to: number, limitMs: number): number {
	const byKey = new Map<string, number[]>();
	for (const r of records) {
		if (!keys.has(r.key)) continue;
		const list = byKey.get(r.key) ?? [];
		list.push(r.start);
		byKey.set(r.key, list);
	}
	let paused = 0;
	for (const starts of byKey.values()) {
		starts.sort((a, b) => a - b);
		if (starts.some((s, i) => i > 0 && starts[i - 1] >= from && starts[i - 1] <= to && s - starts[i - 1] > limitMs)) paused++;
	}
	return paused;
}

main().then(
	() => process.exit(0),
	(err) => {
		console.error(`bench:rebalance failed: ${(err as Error).message}`);
		process.exit(1);
	},
);
