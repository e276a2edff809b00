/**
 * npm run bench:ingest [-- --messages N --actors N --rounds N --seconds S --rate R]
 *
 * (a) baseline: a bare amqplib consumer that consumes and acks N messages
 *     (the broker's own speed on this machine);
 * (b) one keyhive node, with every actor live, taking N messages from the
 *     inbox to their results on the results queue;
 * (b2) the same with its journal on JetStream (TRANSPORTER set: every commit
 *     durable in NATS before it counts), against (b);
 * (b3) the same as (b) with a worker that publishes no results, timed to the
 *     last message performed, against (a): what keyhive itself costs, apart
 *     from the results contract;
 * (a2) the same broker work without keyhive: a bare consumer that publishes
 *     one result per message with confirms and acks after them;
 * all fed by the same publisher and timed the same way, from the first
 * publish to the last message consumed (a), performed (b3) or result
 * received (a2, b, b2). Each keyhive run has a fresh node, queues and data dir;
 * (a), (b), (b2) and (b3) run in turn for --rounds rounds, and their means are
 * the figures, so drift on the machine moves them alike.
 * (c) publish → perform latency at a steady rate (and publish → result,
 *     which crosses the broker twice).
 * The node runs the demo worker's counting in a worker service that also
 * notes when each message is performed.
 */
import * as amqp from "amqplib";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ServiceBroker, type ServiceSchema } from "moleculer";
import { connect } from "nats";
import { streamNames } from "../lib/durable/jetstream-stream";
import { natsOptions } from "../lib/nats";
import { DynamicManager } from "../lib/actors/dynamic-manager";
import type { ActorMessage, ActorSpec, PerformContext } from "../lib/actors/types";
import { readConfig } from "../lib/config";
import { callAction } from "../lib/contracts";
import { brokerOptions } from "../moleculer.config";
import { keyhiveNode } from "../services/keyhive";
import { count } from "../services/worker.service";
import { checkArgs, log, numberArg, percentile, printJsonLine, printTable, round, sleep, waitFor } from "./support";

checkArgs(
	`npm run bench:ingest [-- --messages N --actors N --rounds N --seconds S --rate R]
  --messages N  messages for the throughput runs (default 100,000)
  --rounds N    rounds of (a), (b), (b2), (b3), run in turn; the figures are their means (default 2)
  --actors N    actors live on the keyhive node (default 1,000,000)
  --seconds S   length of the steady-rate latency run (default 10)
  --rate R      messages per second in that run (default 2,000)
Needs RabbitMQ (AMQP_URL, default amqp://guest:guest@127.0.0.1:5672) and, for (b2),
nats-server with JetStream (NATS_URL, default nats://127.0.0.1:4222).`,
	["messages", "actors", "rounds", "seconds", "rate"],
);
const AMQP_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const MESSAGES = numberArg("messages", 100_000);
const ACTORS = numberArg("actors", 1_000_000);
const ROUNDS = numberArg("rounds", 2);
const SECONDS = numberArg("seconds", 10);
const RATE = numberArg("rate", 2000);
const CONFIRM_WINDOW = 10_000;

const keyOf = (i: number) => `key_${((i * 7919) % ACTORS) + 1}`;

/** When each message of the current run was performed (this process runs the node, so one clock serves both ends). */
const performedAt = new Map<string, number>();

/**
 * The demo worker's counting, plus a note of when each message is performed;
 * without results it keeps the count and publishes nothing.
 */
function benchWorker(publishResults: boolean) {
	return {
		name: "worker",
		mixins: [DynamicManager({ node: keyhiveNode })],
		methods: {
			*childrenSpecs(): Iterable<ActorSpec> {
				for (let i = 1; i <= ACTORS; i++) yield { id: `key_${i}`, payload: 0, timeout: 0 };
			},
			perform(id: string, payload: unknown, messages: ActorMessage[], ctx: PerformContext) {
				const now = performance.now();
				for (const m of messages) performedAt.set(m.id, now);
				if (publishResults) return count(id, payload, messages, ctx);
				return { replace: (typeof payload === "number" ? payload : 0) + messages.length };
			},
		},
	};
}

/**
 * Publishes count messages, noting each send time when asked. Confirms are
 * awaited only every CONFIRM_WINDOW messages, so the publisher is never the
 * bottleneck of what is measured.
 */
async function publish(channel: amqp.ConfirmChannel, queue: string, from: number, count: number, sentAt?: Map<string, number>): Promise<void> {
	for (let i = from; i < from + count; i++) {
		const id = `bench-${i}`;
		sentAt?.set(id, performance.now());
		channel.sendToQueue(queue, Buffer.from(JSON.stringify({ i })), { persistent: true, messageId: id, headers: { key: keyOf(i) } });
		if ((i - from + 1) % CONFIRM_WINDOW === 0) await channel.waitForConfirms();
	}
}

async function baseline(connection: amqp.ChannelModel): Promise<number> {
	const queue = `bench-bare-${process.pid}`;
	const consumer = await connection.createChannel();
	await consumer.assertQueue(queue, { durable: true });
	await consumer.prefetch(1000);
	let consumed = 0;
	let pendingAck: amqp.ConsumeMessage | null = null;
	let unacked = 0;
	await consumer.consume(queue, (msg) => {
		if (!msg) return;
		consumed++;
		pendingAck = msg;
		// The same multiple-ack batching keyhive uses, so the comparison is fair to the baseline.
		if (++unacked >= 500 || consumed === MESSAGES) {
			consumer.ack(pendingAck, true);
			unacked = 0;
		}
	});
	const publisher = await connection.createConfirmChannel();
	const started = performance.now();
	await publish(publisher, queue, 0, MESSAGES);
	await waitFor(() => consumed >= MESSAGES, 300_000, 2, "the bare consumer");
	await publisher.waitForConfirms();
	const elapsed = (performance.now() - started) / 1000;
	await consumer.deleteQueue(queue);
	await Promise.all([consumer.close(), publisher.close()]);
	return MESSAGES / elapsed;
}

/**
 * (a2) the same broker work as keyhive without keyhive: consume, publish one
 * persistent result per message on a confirm channel, ack the inbox after the
 * confirms (multiple ack), and time it to the last result received.
 */
async function pipelineBaseline(connection: amqp.ChannelModel): Promise<number> {
	const inbox = `bench-bare2-${process.pid}`;
	const results = `bench-bare2-results-${process.pid}`;
	const consumer = await connection.createConfirmChannel();
	await consumer.assertQueue(inbox, { durable: true });
	await consumer.assertQueue(results, { durable: true });
	await consumer.prefetch(1000);
	let unacked: amqp.ConsumeMessage[] = [];
	const flush = async () => {
		const batch = unacked;
		unacked = [];
		if (batch.length === 0) return;
		await consumer.waitForConfirms();
		consumer.ack(batch[batch.length - 1], true);
	};
	await consumer.consume(inbox, (msg) => {
		if (!msg) return;
		consumer.sendToQueue(results, Buffer.from(`{"id":"${msg.properties.messageId}"}`), { persistent: true, messageId: msg.properties.messageId });
		unacked.push(msg);
		if (unacked.length === 1) setTimeout(() => void flush(), 5);
		else if (unacked.length >= 500) void flush();
	});
	const reader = await connection.createChannel();
	let received = 0;
	await reader.consume(results, (msg) => {
		if (!msg) return;
		received++;
		reader.ack(msg);
	});
	const publisher = await connection.createConfirmChannel();
	const started = performance.now();
	await publish(publisher, inbox, 0, MESSAGES);
	await waitFor(() => received >= MESSAGES, 300_000, 2, "the bare pipeline's results");
	const elapsed = (performance.now() - started) / 1000;
	await publisher.waitForConfirms();
	await reader.deleteQueue(results);
	await reader.deleteQueue(inbox);
	await Promise.all([consumer.close().catch(() => undefined), reader.close(), publisher.close()]);
	return MESSAGES / elapsed;
}

interface KeyhiveRun {
	/** Names the run's queues, data dir and stream. */
	name: string;
	/** "" keeps the node's journal in its SQLite file; a NATS URL puts it on JetStream. */
	transporter: string;
	/** Whether the worker publishes a result per message (the run is then timed to the last result). */
	results: boolean;
}

/** One keyhive node of run in this process, every actor live and the inbox consumed, on queues and a data dir of its own. */
class KeyhiveNode {
	readonly queue: string;
	readonly resultsQueue: string;
	private readonly dir: string;
	private readonly namespace: string;
	private broker: ServiceBroker | null = null;

	constructor(private readonly run: KeyhiveRun) {
		this.queue = `bench-${run.name}-inbox-${process.pid}`;
		this.resultsQueue = `bench-${run.name}-results-${process.pid}`;
		this.namespace = `bench-${run.name}-${process.pid}`;
		this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-ingest-${run.name}-`));
	}

	async start(): Promise<void> {
		const config = readConfig({
			...process.env,
			NODEID: "bench",
			KEYHIVE_DATA_DIR: this.dir,
			KEYHIVE_ACTORS: String(ACTORS),
			KEYHIVE_QUEUE: this.queue,
			KEYHIVE_RESULTS_QUEUE: this.resultsQueue,
			AMQP_URL,
			TRANSPORTER: this.run.transporter,
			NAMESPACE: this.namespace,
		});
		const broker = new ServiceBroker({ ...brokerOptions(config), logger: false });
		this.broker = broker;
		for (const name of ["store", "topology", "ingest"]) broker.loadService(path.join(__dirname, "..", "services", `${name}.service.ts`));
		broker.createService(benchWorker(this.run.results) as unknown as ServiceSchema);
		await broker.start();
		for (;;) {
			const stats = await callAction(broker, "worker.stats");
			const ingest = await callAction(broker, "ingest.status");
			if (stats.actors >= ACTORS && ingest.consuming) break;
			await sleep(100);
		}
	}

	/** Stops the node and removes what the run left: queues, data dir, journal stream. */
	async remove(connection: amqp.ChannelModel): Promise<void> {
		await this.broker?.stop();
		const channel = await connection.createChannel();
		for (const q of [this.resultsQueue, this.queue, `${this.queue}.dead`]) await channel.deleteQueue(q).catch(() => undefined);
		await channel.deleteExchange(`${this.queue}.dlx`).catch(() => undefined);
		await channel.close();
		if (this.run.transporter !== "") await deleteStream(this.run.transporter, this.namespace);
		fs.rmSync(this.dir, { recursive: true, force: true });
	}
}

/** Consumes a results queue, noting when each result was first received. */
async function receiveResults(connection: amqp.ChannelModel, queue: string): Promise<{ received: Map<string, number>; channel: amqp.Channel }> {
	const channel = await connection.createChannel();
	await channel.assertQueue(queue, { durable: true });
	const received = new Map<string, number>();
	await channel.consume(queue, (msg) => {
		if (!msg) return;
		const { id } = JSON.parse(msg.content.toString()) as { id: string };
		if (!received.has(id)) received.set(id, performance.now());
		channel.ack(msg);
	});
	return { received, channel };
}

/** (b), (b2), (b3): N messages through a fresh node, from the first publish to the last result (or the last perform, without results). */
async function throughput(connection: amqp.ChannelModel, run: KeyhiveRun): Promise<number> {
	const node = new KeyhiveNode(run);
	try {
		await node.start();
		performedAt.clear();
		const { received, channel } = await receiveResults(connection, node.resultsQueue);
		const publisher = await connection.createConfirmChannel();
		const started = performance.now();
		await publish(publisher, node.queue, 0, MESSAGES);
		const done = run.results ? () => received.size >= MESSAGES : () => performedAt.size >= MESSAGES;
		await waitFor(done, 600_000, 5, `keyhive (${run.name}) ${run.results ? "results" : "performs"}`);
		const rate = MESSAGES / ((performance.now() - started) / 1000);
		await publisher.close();
		await channel.close();
		return rate;
	} finally {
		await node.remove(connection);
	}
}

/** (c): publish → perform and publish → result latency at a steady rate, on a fresh local node. */
async function latency(connection: amqp.ChannelModel): Promise<{ toPerform: number[]; toResult: number[]; achievedRate: number }> {
	const node = new KeyhiveNode({ name: "latency", transporter: "", results: true });
	try {
		await node.start();
		performedAt.clear();
		const { received, channel } = await receiveResults(connection, node.resultsQueue);
		const publisher = await connection.createConfirmChannel();
		const sentAt = new Map<string, number>();
		const perTick = RATE / 100;
		let next = 0;
		const end = performance.now() + SECONDS * 1000;
		while (performance.now() < end) {
			const tick = performance.now();
			await publish(publisher, node.queue, next, perTick, sentAt);
			next += perTick;
			await sleep(Math.max(0, 10 - (performance.now() - tick)));
		}
		await publisher.waitForConfirms();
		await waitFor(() => [...sentAt.keys()].every((id) => received.has(id)), 60_000, 10, "steady-rate results");
		await publisher.close();
		await channel.close();
		return {
			toPerform: [...sentAt].map(([id, at]) => performedAt.get(id)! - at),
			toResult: [...sentAt].map(([id, at]) => received.get(id)! - at),
			achievedRate: sentAt.size / SECONDS,
		};
	} finally {
		await node.remove(connection);
	}
}

async function deleteStream(url: string, namespace: string): Promise<void> {
	const nc = await connect(natsOptions(url));
	await (await nc.jetstreamManager()).streams.delete(streamNames(namespace).stream).catch(() => undefined);
	await nc.close();
}

async function main(): Promise<void> {
	const connection = await amqp.connect(AMQP_URL);
	log(`(a2) bare consume → publish result → ack, ${MESSAGES.toLocaleString()} messages`);
	const pipelineRate = await pipelineBaseline(connection);
	// In turn, round after round: a machine that drifts (other work, the broker's own state) moves every run alike.
	const rates = { bare: [] as number[], local: [] as number[], durable: [] as number[], noResults: [] as number[] };
	for (let r = 1; r <= ROUNDS; r++) {
		log(`round ${r} of ${ROUNDS}: (a) bare amqplib consumer, ${MESSAGES.toLocaleString()} messages`);
		rates.bare.push(await baseline(connection));
		log(`round ${r}: (b) keyhive node with ${ACTORS.toLocaleString()} actors, journal in SQLite`);
		rates.local.push(await throughput(connection, { name: "local", transporter: "", results: true }));
		log(`round ${r}: (b2) the same with its journal on JetStream at ${NATS_URL}`);
		rates.durable.push(await throughput(connection, { name: "durable", transporter: NATS_URL, results: true }));
		log(`round ${r}: (b3) the same as (b) with a worker that publishes no results`);
		rates.noResults.push(await throughput(connection, { name: "no-results", transporter: "", results: false }));
	}
	const [bareRate, keyhiveRate, durableRate, noResultsRate] = [rates.bare, rates.local, rates.durable, rates.noResults].map(mean);
	log(`(c) latency at ${RATE} msg/s for ${SECONDS} s`);
	const { toPerform, toResult, achievedRate } = await latency(connection);
	await connection.close();

	const ratio = keyhiveRate / bareRate;
	const p50 = percentile(toPerform, 0.5);
	const p99 = percentile(toPerform, 0.99);
	const resultP50 = percentile(toResult, 0.5);
	const resultP99 = percentile(toResult, 0.99);
	printTable(`bench:ingest — ${MESSAGES.toLocaleString()} messages, ${ACTORS.toLocaleString()} actors live, ${os.cpus().length} cores`, [
		{ figure: "(a) bare amqplib consume + ack", value: round(bareRate, 0), unit: `msg/s ${each(rates.bare)}` },
		{ figure: "(b) keyhive publish → result", value: round(keyhiveRate, 0), unit: `msg/s ${each(rates.local)}` },
		{ figure: "ratio (b)/(a)", value: round(ratio, 2) },
		{ figure: "(b2) keyhive, journal on JetStream", value: round(durableRate, 0), unit: `msg/s ${each(rates.durable)}` },
		{ figure: "ratio (b2)/(b): durable ÷ local", value: round(durableRate / keyhiveRate, 2), target: "≥ 0.9", pass: durableRate / keyhiveRate >= 0.9 },
		{ figure: "(b3) keyhive publish → performed, no results", value: round(noResultsRate, 0), unit: `msg/s ${each(rates.noResults)}` },
		{ figure: "ratio (b3)/(a): keyhive's own cost", value: round(noResultsRate / bareRate, 2), target: "≥ 0.8", pass: noResultsRate / bareRate >= 0.8 },
		{ figure: "(a2) bare consume → result → ack", value: round(pipelineRate, 0), unit: "msg/s" },
		{ figure: "ratio (b)/(a2): the same broker work without keyhive", value: round(keyhiveRate / pipelineRate, 2) },
		{ figure: `(c) steady rate achieved`, value: round(achievedRate, 0), unit: "msg/s" },
		{ figure: "(c) publish → perform p50", value: round(p50, 1), unit: "ms" },
		{ figure: "(c) publish → perform p99", value: round(p99, 1), unit: "ms", target: "≤ 100", pass: p99 <= 100 },
		{ figure: "(c) publish → result p50 (two broker hops)", value: round(resultP50, 1), unit: "ms" },
		{ figure: "(c) publish → result p99", value: round(resultP99, 1), unit: "ms" },
	]);
	printJsonLine({
		bench: "ingest",
		messages: MESSAGES,
		actors: ACTORS,
		rounds: ROUNDS,
		bareMsgPerSec: round(bareRate, 0),
		keyhiveMsgPerSec: round(keyhiveRate, 0),
		ratio: round(ratio, 3),
		barePipelineMsgPerSec: round(pipelineRate, 0),
		ratioToPipeline: round(keyhiveRate / pipelineRate, 3),
		durableMsgPerSec: round(durableRate, 0),
		durableRatio: round(durableRate / keyhiveRate, 3),
		noResultsMsgPerSec: round(noResultsRate, 0),
		noResultsRatio: round(noResultsRate / bareRate, 3),
		roundsMsgPerSec: Object.fromEntries(Object.entries(rates).map(([run, values]) => [run, values.map((v) => round(v, 0))])),
		steadyRate: round(achievedRate, 0),
		performLatencyP50Ms: round(p50, 1),
		performLatencyP99Ms: round(p99, 1),
		resultLatencyP50Ms: round(resultP50, 1),
		resultLatencyP99Ms: round(resultP99, 1),
		node: process.version,
	});
}

function mean(values: readonly number[]): number {
	return values.reduce((sum, v) => sum + v, 0) / values.length;
}

/** The rounds' figures, when there is more than one. */
function each(values: readonly number[]): string {
	return values.length > 1 ? `(mean of ${values.map((v) => round(v, 0).toLocaleString()).join(", ")})` : "";
}

main().then(
	() => process.exit(0),
	(err) => {
		console.error(`bench:ingest failed: ${(err as Error).message}`);
		process.exit(1);
	},
);
