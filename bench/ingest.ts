/**
 * npm run bench:ingest [-- --messages N --actors N --seconds S --rate R]
 *
 * (a) baseline: a bare amqplib consumer that consumes and acks N messages
 *     (the broker's own speed on this machine);
 * (b) one keyhive node, with every actor live, taking N messages from the
 *     inbox to their results on the results queue;
 * (b2) the same with its journal on JetStream (TRANSPORTER set: every commit
 *     durable in NATS before it counts), against (b);
 * (a2) the same broker work without keyhive: a bare consumer that publishes
 *     one result per message with confirms and acks after them;
 * all fed by the same publisher and timed the same way, from the first
 * publish to the last message consumed (a) or result received (a2, b).
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
	`npm run bench:ingest [-- --messages N --actors N --seconds S --rate R]
  --messages N  messages for the throughput runs (default 100,000)
  --actors N    actors live on the keyhive node (default 1,000,000)
  --seconds S   length of the steady-rate latency run (default 10)
  --rate R      messages per second in that run (default 2,000)
Needs RabbitMQ (AMQP_URL, default amqp://guest:guest@127.0.0.1:5672) and, for (b2),
nats-server with JetStream (NATS_URL, default nats://127.0.0.1:4222).`,
	["messages", "actors", "seconds", "rate"],
);
const AMQP_URL = process.env.AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";
const NATS_URL = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const MESSAGES = numberArg("messages", 100_000);
const ACTORS = numberArg("actors", 1_000_000);
const SECONDS = numberArg("seconds", 10);
const RATE = numberArg("rate", 2000);
const CONFIRM_WINDOW = 10_000;

const keyOf = (i: number) => `key_${((i * 7919) % ACTORS) + 1}`;

/** When each message was performed (this process runs the node, so one clock serves both ends). */
const performedAt = new Map<string, number>();

/** The demo worker's counting, plus a note of when each message is performed. */
const BenchWorker = {
	name: "worker",
	mixins: [DynamicManager({ node: keyhiveNode })],
	methods: {
		*childrenSpecs(): Iterable<ActorSpec> {
			for (let i = 1; i <= ACTORS; i++) yield { id: `key_${i}`, payload: 0, timeout: 0 };
		},
		perform(id: string, payload: unknown, messages: ActorMessage[], ctx: PerformContext) {
			const now = performance.now();
			for (const m of messages) performedAt.set(m.id, now);
			return count(id, payload, messages, ctx);
		},
	},
};

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

/** One keyhive node in this process; transporter "" keeps its journal in its SQLite file, a NATS URL puts it on JetStream. */
async function startKeyhive(dir: string, queue: string, results: string, transporter = "", namespace = ""): Promise<ServiceBroker> {
	const config = readConfig({
		...process.env,
		NODEID: "bench",
		KEYHIVE_DATA_DIR: dir,
		KEYHIVE_ACTORS: String(ACTORS),
		KEYHIVE_QUEUE: queue,
		KEYHIVE_RESULTS_QUEUE: results,
		AMQP_URL,
		TRANSPORTER: transporter,
		NAMESPACE: namespace,
	});
	const broker = new ServiceBroker({ ...brokerOptions(config), logger: false });
	for (const name of ["store", "topology", "ingest"]) broker.loadService(path.join(__dirname, "..", "services", `${name}.service.ts`));
	broker.createService(BenchWorker as unknown as ServiceSchema);
	await broker.start();
	for (;;) {
		const stats = await callAction(broker, "worker.stats");
		const ingest = await callAction(broker, "ingest.status");
		if (stats.actors >= ACTORS && ingest.consuming) break;
		await sleep(100);
	}
	return broker;
}

/** (b2): N messages through a node whose journal is on JetStream, from the first publish to the last result. */
async function durableThroughput(connection: amqp.ChannelModel): Promise<number> {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-ingest-durable-"));
	const queue = `bench-durable-inbox-${process.pid}`;
	const resultsQueue = `bench-durable-results-${process.pid}`;
	const namespace = `bench-durable-${process.pid}`;
	const broker = await startKeyhive(dir, queue, resultsQueue, NATS_URL, namespace);
	const channel = await connection.createChannel();
	await channel.assertQueue(resultsQueue, { durable: true });
	const seen = new Set<string>();
	await channel.consume(resultsQueue, (msg) => {
		if (!msg) return;
		seen.add((JSON.parse(msg.content.toString()) as { id: string }).id);
		channel.ack(msg);
	});
	const publisher = await connection.createConfirmChannel();
	const started = performance.now();
	await publish(publisher, queue, 0, MESSAGES);
	await waitFor(() => seen.size >= MESSAGES, 600_000, 5, "durable keyhive results");
	const rate = MESSAGES / ((performance.now() - started) / 1000);
	await broker.stop();
	for (const q of [resultsQueue, queue, `${queue}.dead`]) await channel.deleteQueue(q).catch(() => undefined);
	await channel.deleteExchange(`${queue}.dlx`).catch(() => undefined);
	await publisher.close();
	await channel.close();
	await deleteStream(namespace);
	fs.rmSync(dir, { recursive: true, force: true });
	return rate;
}

async function deleteStream(namespace: string): Promise<void> {
	const nc = await connect(natsOptions(NATS_URL));
	await (await nc.jetstreamManager()).streams.delete(streamNames(namespace).stream).catch(() => undefined);
	await nc.close();
}

async function main(): Promise<void> {
	const connection = await amqp.connect(AMQP_URL);
	log(`(a) bare amqplib consumer, ${MESSAGES.toLocaleString()} messages`);
	const bareRate = await baseline(connection);
	log(`(a2) bare consume → publish result → ack, ${MESSAGES.toLocaleString()} messages`);
	const pipelineRate = await pipelineBaseline(connection);

	const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bench-ingest-"));
	const queue = `bench-inbox-${process.pid}`;
	const resultsQueue = `bench-results-${process.pid}`;
	log(`(b) keyhive node with ${ACTORS.toLocaleString()} actors`);
	const spawnStarted = performance.now();
	const broker = await startKeyhive(dir, queue, resultsQueue);
	log(`node ready with every actor live in ${round((performance.now() - spawnStarted) / 1000)} s`);

	const resultsChannel = await connection.createChannel();
	await resultsChannel.assertQueue(resultsQueue, { durable: true });
	const received = new Map<string, number>();
	await resultsChannel.consume(resultsQueue, (msg) => {
		if (!msg) return;
		const { id } = JSON.parse(msg.content.toString()) as { id: string };
		if (!received.has(id)) received.set(id, performance.now());
		resultsChannel.ack(msg);
	});
	const publisher = await connection.createConfirmChannel();
	const started = performance.now();
	await publish(publisher, queue, 0, MESSAGES);
	await waitFor(() => received.size >= MESSAGES, 600_000, 5, "keyhive results");
	const keyhiveRate = MESSAGES / ((performance.now() - started) / 1000);

	log(`(b2) keyhive node with its journal on JetStream at ${NATS_URL}`);
	await broker.stop();
	const durableRate = await durableThroughput(connection);
	const local = await startKeyhive(dir, queue, resultsQueue);

	log(`(c) latency at ${RATE} msg/s for ${SECONDS} s`);
	const sentAt = new Map<string, number>();
	const perTick = RATE / 100;
	let next = MESSAGES;
	const end = performance.now() + SECONDS * 1000;
	while (performance.now() < end) {
		const tick = performance.now();
		await publish(publisher, queue, next, perTick, sentAt);
		next += perTick;
		await sleep(Math.max(0, 10 - (performance.now() - tick)));
	}
	await publisher.waitForConfirms();
	await waitFor(() => [...sentAt.keys()].every((id) => received.has(id)), 60_000, 10, "steady-rate results");
	const toPerform = [...sentAt].map(([id, at]) => performedAt.get(id)! - at);
	const toResult = [...sentAt].map(([id, at]) => received.get(id)! - at);
	const achievedRate = sentAt.size / SECONDS;

	await local.stop();
	await resultsChannel.deleteQueue(resultsQueue);
	for (const q of [queue, `${queue}.dead`]) await resultsChannel.deleteQueue(q).catch(() => undefined);
	await resultsChannel.deleteExchange(`${queue}.dlx`).catch(() => undefined);
	await connection.close();
	fs.rmSync(dir, { recursive: true, force: true });

	const ratio = keyhiveRate / bareRate;
	const p50 = percentile(toPerform, 0.5);
	const p99 = percentile(toPerform, 0.99);
	const resultP50 = percentile(toResult, 0.5);
	const resultP99 = percentile(toResult, 0.99);
	printTable(`bench:ingest — ${MESSAGES.toLocaleString()} messages, ${ACTORS.toLocaleString()} actors live, ${os.cpus().length} cores`, [
		{ figure: "(a) bare amqplib consume + ack", value: round(bareRate, 0), unit: "msg/s" },
		{ figure: "(b) keyhive publish → result", value: round(keyhiveRate, 0), unit: "msg/s" },
		{ figure: "ratio (b)/(a)", value: round(ratio, 2), target: "≥ 0.8", pass: ratio >= 0.8 },
		{ figure: "(b2) keyhive, journal on JetStream", value: round(durableRate, 0), unit: "msg/s" },
		{ figure: "ratio (b2)/(b): durable ÷ local", value: round(durableRate / keyhiveRate, 2), target: "≥ 0.9", pass: durableRate / keyhiveRate >= 0.9 },
		{ figure: "(a2) bare consume → result → ack", value: round(pipelineRate, 0), unit: "msg/s" },
		{ figure: "ratio (b)/(a2): keyhive's own cost", value: round(keyhiveRate / pipelineRate, 2) },
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
		bareMsgPerSec: round(bareRate, 0),
		keyhiveMsgPerSec: round(keyhiveRate, 0),
		ratio: round(ratio, 3),
		barePipelineMsgPerSec: round(pipelineRate, 0),
		ratioToPipeline: round(keyhiveRate / pipelineRate, 3),
		durableMsgPerSec: round(durableRate, 0),
		durableRatio: round(durableRate / keyhiveRate, 3),
		steadyRate: round(achievedRate, 0),
		performLatencyP50Ms: round(p50, 1),
		performLatencyP99Ms: round(p99, 1),
		resultLatencyP50Ms: round(resultP50, 1),
		resultLatencyP99Ms: round(resultP99, 1),
		node: process.version,
	});
}

main().then(
	() => process.exit(0),
	(err) => {
		console.error(`bench:ingest failed: ${(err as Error).message}`);
		process.exit(1);
	},
);
