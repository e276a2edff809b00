/**
 * npm run bench:failover [-- --actors N --rows N --keys K]
 *
 * Three node processes on a 3-server NATS cluster of the bench's own (journal
 * stream with 3 replicas, consensus 2) hold the actors and a backlog of pending
 * rows published to the inbox; one node is killed (SIGKILL) and its data dir
 * deleted, never to come back. Reported:
 * (1) time from the kill to the last of the dead node's keys performing again on
 *     a survivor (perform log), against the heartbeat timeout: the floor, since no
 *     node can know a silent peer is gone sooner;
 * (2) the dead node's pending rows over the takeover's own time (its "took over
 *     the journal of lost instance" log line), against a plain read and replay
 *     of the same journal, timed by the bench just before the kill;
 * (3) JetStream bytes of the stream per live row (pending rows and actor
 *     records) once the takeover is done.
 *
 * The demo worker performs one message at a time with simulated work long enough
 * that every key's share of the rows lasts BACKLOG_S: the backlog is still there
 * at the kill, and each key performs steadily, so its first perform on its new
 * owner marks when it is back. The kill waits for every key to have committed a
 * perform, so the dead node leaves actor records as well as rows.
 */
import * as fs from "fs";
import * as path from "path";
import Database = require("better-sqlite3");
import { connect, type JetStreamManager, type NatsConnection } from "nats";
import { findOverlaps, parsePerformLog } from "../lib/actors/perform-log";
import { readConfig } from "../lib/config";
import { callAction } from "../lib/contracts";
import { nodeOfInstance } from "../lib/durable/instance-id";
import { InstanceLogs } from "../lib/durable/instance-logs";
import { type StreamNames, streamNames } from "../lib/durable/jetstream-stream";
import { Replay } from "../lib/durable/replay";
import { natsOptions } from "../lib/nats";
import { Ring } from "../lib/ring";
import { NodeProcess, observer, waitForReady } from "../test/support/cluster";
import { freePort, uniqueName } from "../test/support/env";
import { NatsCluster } from "../test/support/nats-cluster";
import { tempDir } from "../test/support/tmp";
import { deleteQueues, Producer } from "../test/support/traffic";
import { waitFor } from "../test/support/wait";
import { checkArgs, demoNodeEnv, log, numberArg, printJsonLine, printTable, round } from "./support";

checkArgs(
	`npm run bench:failover [-- --actors N --rows N --keys K]
  --actors N    actors over the cluster (default 1,000,000)
  --rows N      rows published to the inbox before a node is killed (default 100,000)
  --keys K      keys those rows are spread over (default 500)
Needs RabbitMQ (AMQP_URL, default amqp://guest:guest@127.0.0.1:5672) and
nats-server (TEST_NATS_SERVER, default /usr/sbin/nats-server): starts a 3-server NATS
cluster of its own on free ports and three real node processes.`,
	["actors", "rows", "keys"],
);
const ACTORS = numberArg("actors", 1_000_000);
const ROWS = numberArg("rows", 100_000);
const KEYS = numberArg("keys", 500);
if (KEYS < 1 || ROWS < KEYS) {
	process.stderr.write(`--rows (${ROWS}) must be at least --keys (${KEYS}), and --keys at least 1: every key needs a backlog\n`);
	process.exit(2);
}
/** How long each key's share of the rows takes to perform: longer than ingesting them, the kill and the recovery together. */
const BACKLOG_S = 120;
const WORK_MS = Math.max(100, Math.ceil((BACKLOG_S * 1000 * KEYS) / ROWS));
const PUBLISH_CHUNK = 10_000;
const AMQP_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const NODES = ["f1", "f2", "f3"];
const VICTIM = "f3";
const SURVIVORS = NODES.filter((n) => n !== VICTIM);

type Observer = Awaited<ReturnType<typeof observer>>;

interface TakeoverLine {
	records: number;
	rows: number;
	actors: number;
	ms: number;
	by: string;
}

interface PlainReplay {
	records: number;
	rows: number;
	ms: number;
}

async function main(): Promise<void> {
	const name = uniqueName("failover");
	const dir = tempDir(name).dir;
	const performLog = path.join(dir, "performs.log");
	const nats = new NatsCluster([await freePort(), await freePort(), await freePort()], [await freePort(), await freePort(), await freePort()]);
	const env = {
		// The whole backlog may sit on one node after the takeover: ingest must never pause for it.
		...demoNodeEnv({ name, actors: ACTORS, workMs: WORK_MS, performLog, highWater: ROWS * 4, amqpUrl: AMQP_URL }),
		TRANSPORTER: nats.url(),
		KEYHIVE_REPLICAS: "3",
		KEYHIVE_CONSENSUS: "2",
	};
	// What the nodes will run with (their environment is this one plus env): the heartbeat timeout, ring points, perform timeout.
	const config = readConfig({ ...process.env, ...env });
	// The keys Producer.publish spreads the rows over.
	const keys = Array.from({ length: KEYS }, (_, i) => `key_${i + 1}`);
	const nodes = NODES.map((id) => new NodeProcess({ nodeID: id, dir, env }));
	const victim = nodes[NODES.indexOf(VICTIM)];
	const survivors = nodes.filter((n) => n !== victim);
	const producer = new Producer(AMQP_URL, env.KEYHIVE_QUEUE, name);
	let broker: Observer | undefined;
	let nc: NatsConnection | undefined;
	try {
		if (WORK_MS >= config.performTimeoutMs) {
			throw new Error(`${WORK_MS} ms of work per perform is more than the perform timeout (${config.performTimeoutMs} ms): give more --rows per --keys`);
		}
		log(`starting a 3-server NATS cluster at ${nats.url()}`);
		await nats.start();
		broker = await observer(name, { url: nats.url() });
		nc = await connect(natsOptions(nats.url()));
		const jsm = await nc.jetstreamManager();

		log(`starting ${NODES.join(", ")} with ${ACTORS.toLocaleString()} actors (demo work ${WORK_MS} ms per perform)`);
		for (const n of nodes) n.start();
		await waitForReady(broker, NODES, NODES, 120_000);
		await waitForActors(broker, NODES, ACTORS);

		log(`publishing ${ROWS.toLocaleString()} rows over ${KEYS} keys to ${env.KEYHIVE_QUEUE}`);
		await producer.start();
		for (let sent = 0; sent < ROWS; sent += PUBLISH_CHUNK) await producer.publish(Math.min(PUBLISH_CHUNK, ROWS - sent), KEYS);
		await waitForIngest(broker, NODES, ROWS);
		// Once every key has committed a perform, the victim has actor records to recover as well as rows.
		const committed = new FirstPerforms(performLog, keys, NODES, 0);
		await waitFor(() => committed.all(), {
			timeoutMs: 60_000 + WORK_MS,
			intervalMs: 500,
			message: "a committed perform of every key",
		});

		const names = streamNames(name);
		const logs = new InstanceLogs(nc.jetstream(), jsm, names.stream, names.subjectPrefix);
		const instance = (await logs.instances()).find((i) => nodeOfInstance(i) === VICTIM);
		if (!instance) throw new Error(`no journal of ${VICTIM} in stream ${names.stream}`);
		log(`baseline: plain read and replay of ${VICTIM}'s journal ${instance}`);
		const plain = await plainReplay(jsm, logs, names, instance);

		const pendingAtKill = await pendingOn(broker, NODES);
		log(`${pendingAtKill.toLocaleString()} rows pending; killing ${VICTIM} and deleting its data dir`);
		const killedAt = wallNow();
		await victim.kill();
		victim.deleteData();

		const takeover = await waitFor(() => takeoverLine(survivors, instance), {
			timeoutMs: 120_000,
			intervalMs: 200,
			message: `a survivor's "took over the journal of lost instance ${instance}" log line`,
		});
		log(`${takeover.by} took over ${takeover.rows.toLocaleString()} pending rows in ${takeover.ms} ms`);
		await waitForReady(broker, SURVIVORS, SURVIVORS, 60_000);

		const ring = Ring.of(NODES, config.ringPoints);
		const victimKeys = keys.filter((k) => ring.ownerOf(k) === VICTIM);
		log(`waiting for ${victimKeys.length} keys of ${VICTIM} to perform on ${SURVIVORS.join(" and ")}`);
		const back = new FirstPerforms(performLog, victimKeys, SURVIVORS, killedAt);
		await waitFor(() => back.all(), {
			// Each perform is logged when it commits, WORK_MS after it started.
			timeoutMs: 60_000 + WORK_MS,
			intervalMs: 500,
			message: `every key of ${VICTIM} performing on a survivor (a key whose backlog ran out before the kill never does: give more --rows per --keys)`,
		});
		const firstBackMs = Math.min(...back.first.values()) - killedAt;
		const lastBackMs = Math.max(...back.first.values()) - killedAt;

		const stream = await jsm.streams.info(names.stream);
		const pendingAfter = await pendingOn(broker, SURVIVORS);
		const actorRecords = survivors.reduce((sum, n) => sum + actorRecordsOf(n), 0);
		const liveRows = pendingAfter + actorRecords;
		const snapshots = nodes.reduce((sum, n) => sum + (n.log().match(/journal snapshot at/g)?.length ?? 0), 0);
		const overlaps = findOverlaps(parsePerformLog(fs.readFileSync(performLog, "utf8")));

		const floorMs = config.heartbeatTimeoutS * 1000;
		const targetMs = floorMs + 5000;
		const recoveredRate = takeover.rows / (takeover.ms / 1000);
		const plainRate = plain.rows / (plain.ms / 1000);
		const bytesPerRow = stream.state.bytes / liveRows;
		printTable(
			`bench:failover — 3 nodes, ${ACTORS.toLocaleString()} actors, ${pendingAtKill.toLocaleString()} rows pending over ${KEYS} keys, ${VICTIM} killed with its disk`,
			[
				{ figure: `(1) kill → first key of ${VICTIM} performing again`, value: round(firstBackMs, 0), unit: "ms" },
				{
					figure: `(1) kill → last of its ${victimKeys.length} keys performing again`,
					value: round(lastBackMs, 0),
					unit: "ms",
					target: `≤ ${targetMs}`,
					pass: lastBackMs <= targetMs,
				},
				{ figure: "baseline: heartbeat timeout (no node can know sooner)", value: floorMs, unit: "ms" },
				{ figure: "ratio (1) / heartbeat timeout", value: round(lastBackMs / floorMs, 2) },
				{
					figure: `(2) ${VICTIM}'s pending rows taken over`,
					value: takeover.rows,
					unit: `(and ${takeover.actors} actor records; ${takeover.records} journal records read)`,
				},
				{ figure: "(2) takeover: seal, read, replay, commit, remove", value: takeover.ms, unit: "ms" },
				{ figure: "(2) rows recovered per second", value: round(recoveredRate, 0), unit: "rows/s" },
				{
					figure: `baseline: plain read + replay of ${VICTIM}'s journal before the kill`,
					value: round(plainRate, 0),
					unit: `rows/s (${plain.rows} rows, ${plain.records} journal records, ${round(plain.ms, 0)} ms)`,
				},
				{ figure: "ratio (2) / plain replay", value: round(recoveredRate / plainRate, 2) },
				{ figure: "(3) stream bytes after the takeover", value: stream.state.bytes, unit: `B (${stream.state.messages} messages)` },
				{ figure: "(3) live rows: pending + actor records", value: liveRows, unit: `(${pendingAfter} + ${actorRecords})` },
				{ figure: "(3) JetStream bytes per live row", value: round(bytesPerRow, 1), unit: "B" },
				{ figure: "journal snapshots written in the run (compactions)", value: snapshots },
				{ figure: "performs of one key on two nodes at once", value: overlaps.length, target: "0", pass: overlaps.length === 0 },
			],
		);
		printJsonLine({
			bench: "failover",
			actors: ACTORS,
			rows: ROWS,
			keys: KEYS,
			workMs: WORK_MS,
			pendingAtKill,
			victimKeys: victimKeys.length,
			firstKeyBackMs: round(firstBackMs, 0),
			lastKeyBackMs: round(lastBackMs, 0),
			heartbeatTimeoutMs: floorMs,
			lastKeyBackOverHeartbeat: round(lastBackMs / floorMs, 3),
			takeoverRows: takeover.rows,
			takeoverActorRecords: takeover.actors,
			takeoverMs: takeover.ms,
			rowsRecoveredPerSec: round(recoveredRate, 0),
			plainReplayRows: plain.rows,
			plainReplayMs: round(plain.ms, 0),
			plainReplayRowsPerSec: round(plainRate, 0),
			recoveredOverPlainReplay: round(recoveredRate / plainRate, 3),
			streamBytes: stream.state.bytes,
			liveRows,
			bytesPerLiveRow: round(bytesPerRow, 1),
			snapshots,
			overlaps: overlaps.length,
			node: process.version,
		});
	} finally {
		// Nothing of this run is kept, so no node needs a graceful leave (which would ship its backlog around first).
		await Promise.all(nodes.map((n) => n.kill()));
		await producer.close();
		await broker?.stop();
		await nc?.close();
		await deleteQueues(AMQP_URL, env.KEYHIVE_QUEUE, env.KEYHIVE_RESULTS_QUEUE);
		// The journal stream lives only in this cluster's store, which cleanup() removes.
		await nats.cleanup();
		fs.rmSync(dir, { recursive: true, force: true });
	}
}

/** Wall clock in ms with sub-ms precision, as the perform log writes it. */
function wallNow(): number {
	return performance.timeOrigin + performance.now();
}

async function waitForActors(broker: Observer, nodes: string[], total: number): Promise<void> {
	await waitFor(
		async () => {
			const stats = await Promise.all(nodes.map((nodeID) => callAction(broker, "worker.stats", {}, { nodeID })));
			return stats.reduce((sum, s) => sum + s.actors, 0) >= total;
		},
		{ timeoutMs: 300_000, intervalMs: 200, message: `${total} actors live` },
	);
}

/** Every published row is in a store: pending, or already performed (the inbox consumer acks once its rows are stored). */
async function waitForIngest(broker: Observer, nodes: string[], rows: number): Promise<void> {
	await waitFor(
		async () => {
			const stats = await Promise.all(nodes.map((nodeID) => callAction(broker, "worker.stats", {}, { nodeID })));
			return stats.reduce((sum, s) => sum + s.pending + s.processed, 0) >= rows;
		},
		{ timeoutMs: 600_000, intervalMs: 200, message: `${rows} rows ingested` },
	);
}

async function pendingOn(broker: Observer, nodes: string[]): Promise<number> {
	const stats = await Promise.all(nodes.map((nodeID) => callAction(broker, "store.stats", {}, { nodeID })));
	return stats.reduce((sum, s) => sum + s.pending, 0);
}

/**
 * What a takeover does minus sealing, committing and removing: the journal read
 * from the stream leader up to its last message now, replayed into a scratch store.
 */
async function plainReplay(jsm: JetStreamManager, logs: InstanceLogs, names: StreamNames, instance: string): Promise<PlainReplay> {
	const last = await jsm.streams.getMessage(names.stream, { last_by_subj: `${names.subjectPrefix}.${instance}` });
	const started = performance.now();
	const replay = new Replay();
	for await (const entry of logs.read(instance, last.seq)) replay.add(entry);
	const state = replay.finish();
	const ms = performance.now() - started;
	const rows = state.pendingCount;
	state.close();
	return { records: replay.records, rows, ms };
}

const TOOK_OVER = /took over the journal of lost instance (\S+) .*: (\d+) records(?: from a snapshot)?, (\d+) pending rows, (\d+) actor records, in (\d+) ms/;

/** The takeover of instance as a survivor logged it, or null while none has. */
function takeoverLine(survivors: NodeProcess[], instance: string): TakeoverLine | null {
	for (const node of survivors) {
		for (const line of node.log().split("\n")) {
			const m = TOOK_OVER.exec(line);
			if (m && m[1] === instance) {
				return { records: Number(m[2]), rows: Number(m[3]), actors: Number(m[4]), ms: Number(m[5]), by: node.nodeID };
			}
		}
	}
	return null;
}

/**
 * Each key's first perform on one of nodes that started after `after` (wall ms), read
 * from the perform log as it grows: a look parses only the lines appended since the
 * last, so polling it does not take CPU from the nodes being measured.
 */
class FirstPerforms {
	readonly first = new Map<string, number>();
	private readonly keys: Set<string>;
	private offset = 0;
	private partial = "";

	constructor(
		private readonly file: string,
		keys: readonly string[],
		private readonly nodes: readonly string[],
		private readonly after: number,
	) {
		this.keys = new Set(keys);
	}

	/** Reads what was appended; true once every key has such a perform. */
	all(): boolean {
		const fd = fs.openSync(this.file, "r");
		let text: string;
		try {
			const chunk = Buffer.alloc(fs.fstatSync(fd).size - this.offset);
			this.offset += fs.readSync(fd, chunk, 0, chunk.length, this.offset);
			text = this.partial + chunk.toString("utf8");
		} finally {
			fs.closeSync(fd);
		}
		// A node may be writing a line right now: its end comes with the next look.
		const end = text.lastIndexOf("\n") + 1;
		this.partial = text.slice(end);
		for (const r of parsePerformLog(text.slice(0, end))) {
			if (!this.keys.has(r.key) || !this.nodes.includes(r.node) || r.start <= this.after) continue;
			this.first.set(r.key, Math.min(r.start, this.first.get(r.key) ?? Number.POSITIVE_INFINITY));
		}
		return this.first.size === this.keys.size;
	}
}

/** Actor records in a running node's SQLite store, read-only: no action reports them. */
function actorRecordsOf(node: NodeProcess): number {
	const db = new Database(path.join(node.dataDir, `${node.nodeID}.sqlite`), { readonly: true, fileMustExist: true });
	try {
		return db.prepare("SELECT count(*) FROM actors").pluck().get() as number;
	} finally {
		db.close();
	}
}

main().then(
	() => process.exit(0),
	(err) => {
		console.error(`bench:failover failed: ${(err as Error).message}`);
		process.exit(1);
	},
);
