/**
 * lib/ingest against the real RabbitMQ on 127.0.0.1:5672 and a real SQLite store.
 * Every test declares its own randomly named queues and deletes them at the end.
 */
import assert from "node:assert/strict";
import * as fs from "fs";
import { describe, it, type TestContext } from "node:test";
import { RESULT_ID_HEADER } from "../../lib/actors/result-id";
import { type KeyhiveConfig, readConfig } from "../../lib/config";
import { AmqpConnection } from "../../lib/ingest/connection";
import { deadLetterExchangeOf, deadLetterQueueOf, InboxConsumer, REASON_HEADER } from "../../lib/ingest/consumer";
import { OutboxRelay } from "../../lib/ingest/outbox";
import { type OutgoingMessage, publishBatch } from "../../lib/ingest/publisher";
import { callAction } from "../../lib/contracts";
import { Ring } from "../../lib/ring";
import type { DurableStore } from "../../lib/durable/durable-store";
import type { Store } from "../../lib/store/store";
import { closeConnectionFromOutside, deleteAll, drainQueue, openTestChannel, recordingLogger, tempStore } from "../support/amqp";
import { NodeProcess, observer, waitForReady } from "../support/cluster";
import { AMQP_URL, freePort, NATS_URL, uniqueName } from "../support/env";
import { deleteJournalStream } from "../support/journal-stream";
import { fillDisk, onFile, tempDir } from "../support/tmp";
import { sleep, waitFor } from "../support/wait";

type Env = Record<string, string>;

/** A consumer on its own queue, a producer connection, a helper channel and a temp store; all cleaned up after the test. */
async function inboxFixture(t: TestContext, env: Env = {}) {
	const queue = uniqueName("inbox");
	const config: KeyhiveConfig = readConfig({ KEYHIVE_QUEUE: queue, KEYHIVE_RESULTS_QUEUE: uniqueName("results"), ...env });
	const logger = recordingLogger();
	const { store, durable, sink, dispose } = tempStore();
	const consumerName = uniqueName("consumer");
	const connection = new AmqpConnection(AMQP_URL, { name: consumerName, logger });
	const consumer = new InboxConsumer(connection, sink, config, logger);
	const producer = new AmqpConnection(AMQP_URL, { name: uniqueName("producer"), logger: recordingLogger() });
	const helper = await openTestChannel();
	t.after(async () => {
		await consumer.close();
		await connection.close();
		await producer.close();
		await deleteAll(helper.model, {
			queues: [queue, deadLetterQueueOf(queue), config.resultsQueue],
			exchanges: [deadLetterExchangeOf(queue)],
		});
		await helper.close();
		dispose();
	});
	connection.start();
	producer.start();
	consumer.start();
	await waitFor(() => consumer.isConsuming && producer.isConnected, { message: "the consumer to consume", timeoutMs: 15_000 });
	return { queue, config, logger, store, durable, consumerName, connection, consumer, producer, helper };
}

/** Every id the store holds for these keys: pending rows and remembered (processed) ids. */
function idsHeld(store: Store): { pending: string[]; processed: string[] } {
	const shipment = store.shipmentOf(store.keysHeld());
	return { pending: shipment.messages.map((m) => m.id), processed: shipment.processed.map((p) => p.id) };
}

/** Stands in for the workers: commits pending rows as done through the journal, `perTick` at a time, and asks the consumer to recheck. */
function startProcessing(durable: DurableStore, consumer: InboxConsumer, perTick: number): { stop(): void } {
	let committing = false;
	const timer = setInterval(() => {
		if (committing) return;
		const rows = durable.store.scan(0, perTick);
		if (rows.length === 0) return;
		committing = true;
		void durable
			.commit({ done: rows.map((r) => ({ id: r.id, key: r.key })) })
			.then(() => consumer.recheck())
			.finally(() => {
				committing = false;
			});
	}, 10);
	return { stop: () => clearInterval(timer) };
}

function messages(count: number, keys: number, prefix = "m"): OutgoingMessage[] {
	return Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${i}`, key: `key_${i % keys}`, payload: `payload ${i}` }));
}

/** An outbox relay over a temp store and its own connection and results queue, all removed after the test. */
async function relayFixture(t: TestContext, pollMs: number) {
	const resultsQueue = uniqueName("results");
	const logger = recordingLogger();
	const { store, durable, dispose } = tempStore();
	const name = uniqueName("relay");
	const connection = new AmqpConnection(AMQP_URL, { name, logger });
	const relay = new OutboxRelay(connection, durable, { resultsQueue, pollMs }, logger);
	const helper = await openTestChannel();
	t.after(async () => {
		await relay.close();
		await connection.close();
		await deleteAll(helper.model, { queues: [resultsQueue] });
		await helper.close();
		dispose();
	});
	return { resultsQueue, logger, store, durable, name, connection, relay, helper };
}

describe("ingest (RabbitMQ + SQLite)", () => {
	it("stores every good message once and dead-letters each bad one with its reason", async (t) => {
		const f = await inboxFixture(t, {
			KEYHIVE_PAYLOAD_FORMAT: "json",
			KEYHIVE_MAX_KEY_LENGTH: "16",
			KEYHIVE_MAX_BODY_BYTES: "1024",
			KEYHIVE_MAX_HEADER_BYTES: "512",
			KEYHIVE_BATCH_SIZE: "7",
		});
		// forwarded: the headers the dead letter carries besides the reason (all of them unless said otherwise).
		const badCases: { reason: string; body: Buffer; headers: Record<string, string>; forwarded?: Record<string, string> }[] = [
			{ reason: "missing-key", body: Buffer.from("{}"), headers: { trace: "t" } },
			{ reason: "empty-key", body: Buffer.from("{}"), headers: { key: "", trace: "t" } },
			{ reason: "key-too-long", body: Buffer.from("{}"), headers: { key: "k".repeat(17), trace: "t" } },
			{ reason: "body-too-large", body: Buffer.from(JSON.stringify({ s: "x".repeat(2000) })), headers: { key: "k", trace: "t" } },
			{ reason: "headers-too-large", body: Buffer.from("{}"), headers: { key: "k", trace: "t", big: "h".repeat(600) } },
			// Too big to re-encode safely: the dead letter carries the reason alone.
			{ reason: "headers-too-large", body: Buffer.from("{}"), headers: { key: "k", huge: "h".repeat(40_000) }, forwarded: {} },
			{ reason: "undecodable-payload", body: Buffer.from([0x7b, 0xff, 0x7d]), headers: { key: "k", trace: "t" } },
			{ reason: "undecodable-payload", body: Buffer.from("{nope"), headers: { key: "k", trace: "t" } },
		];
		const goodIds: string[] = [];
		const badById = new Map<string, (typeof badCases)[number]>();
		let n = 0;
		for (let round = 0; round < 3; round++) {
			for (const bad of badCases) {
				const goodId = `good-${n++}`;
				goodIds.push(goodId);
				f.helper.channel.sendToQueue(f.queue, Buffer.from(JSON.stringify({ n })), { messageId: goodId, headers: { key: `key_${n % 3}`, trace: "t" } });
				const badId = `bad-${n++}`;
				badById.set(badId, bad);
				f.helper.channel.sendToQueue(f.queue, bad.body, { messageId: badId, headers: bad.headers, contentType: "application/json" });
			}
		}
		// A redelivered good one and a good one without a messageId.
		f.helper.channel.sendToQueue(f.queue, Buffer.from("{}"), { messageId: goodIds[0], headers: { key: "key_1" } });
		f.helper.channel.sendToQueue(f.queue, Buffer.from('{"anonymous":true}'), { headers: { key: "key_2" } });

		await waitFor(() => f.consumer.ingested === goodIds.length + 1 && f.consumer.deadLettered === badById.size && f.consumer.duplicates === 1, {
			message: "every delivery to be stored, dead-lettered or dropped as a duplicate",
			timeoutMs: 15_000,
			detail: () => `ingested ${f.consumer.ingested}, dead ${f.consumer.deadLettered}, duplicates ${f.consumer.duplicates}`,
		});

		const stored = f.store.scan(0, 1000);
		const storedIds = stored.map((m) => m.id);
		assert.equal(new Set(storedIds).size, storedIds.length, "no id stored twice");
		assert.deepEqual(storedIds.filter((id) => id.startsWith("good-")).sort(), [...goodIds].sort());
		assert.equal(storedIds.filter((id) => id.startsWith("sha256:")).length, 1, "the message without an id got a derived one");
		assert.deepEqual(stored.find((m) => m.id === "good-0")?.headers, { trace: "t" }, "the key header is not stored");

		const dead = await drainQueue(f.helper.channel, deadLetterQueueOf(f.queue));
		assert.deepEqual(dead.map((d) => d.properties.messageId).sort(), [...badById.keys()].sort(), "each bad one dead-lettered once");
		for (const d of dead) {
			const sent = badById.get(String(d.properties.messageId))!;
			assert.deepEqual(d.properties.headers, { ...(sent.forwarded ?? sent.headers), [REASON_HEADER]: sent.reason }, "original headers plus the reason");
			assert.deepEqual(d.content, sent.body, "original body");
			assert.equal(d.properties.contentType, "application/json", "original properties");
			assert.equal(d.properties.deliveryMode, 2, "persistent");
		}
		const inbox = await f.helper.channel.checkQueue(f.queue);
		assert.equal(inbox.messageCount, 0, "everything acked");
	});

	it("loses and doubles nothing when its connection is closed twice under 50,000 messages", async (t) => {
		const f = await inboxFixture(t, {
			KEYHIVE_PREFETCH: "500",
			KEYHIVE_BATCH_SIZE: "250",
			KEYHIVE_HIGH_WATER: "4000",
			KEYHIVE_LOW_WATER: "2000",
		});
		const total = 50_000;
		const sent = messages(total, 500);
		assert.equal(await publishBatch(f.producer, f.queue, sent), total);

		// The consumer fills the store to high water and holds; the "workers" then set the pace.
		const processing = startProcessing(f.durable, f.consumer, 200);
		t.after(() => processing.stop());
		for (const threshold of [10_000, 25_000]) {
			await waitFor(() => f.store.processedCount >= threshold, { message: `${threshold} messages processed`, timeoutMs: 20_000 });
			assert.equal(await closeConnectionFromOutside(f.consumerName), 1, "the consumer's connection was found and closed");
			await waitFor(() => !f.consumer.isConsuming || f.store.processedCount >= total, { message: "the consumer to notice", timeoutMs: 15_000 });
			await waitFor(() => f.consumer.isConsuming, { message: "the consumer to consume again", timeoutMs: 10_000 });
		}
		await waitFor(() => f.store.processedCount === total && f.store.pendingCount === 0, {
			message: "every message to be processed",
			timeoutMs: 30_000,
			detail: () => `processed ${f.store.processedCount}, pending ${f.store.pendingCount}, ingested ${f.consumer.ingested}`,
		});

		const held = idsHeld(f.store);
		assert.equal(held.pending.length, 0);
		assert.equal(new Set(held.processed).size, total, "each id exactly once");
		assert.deepEqual(new Set(held.processed), new Set(sent.map((m) => m.id)), "none missing");
		assert.equal(f.consumer.ingested, total, "each message appended exactly once; redeliveries counted as duplicates");
		assert.equal(f.logger.at("warn").filter((l) => l.includes("lost")).length, 2, "both closes were seen");
		assert.equal((await f.helper.channel.checkQueue(f.queue)).messageCount, 0, "everything acked");
		t.diagnostic(`redelivered duplicates dropped: ${f.consumer.duplicates}`);
	});

	it("holds deliveries above high water and takes them again at low water", async (t) => {
		const f = await inboxFixture(t, {
			KEYHIVE_PREFETCH: "50",
			KEYHIVE_BATCH_SIZE: "20",
			KEYHIVE_HIGH_WATER: "300",
			KEYHIVE_LOW_WATER: "100",
		});
		const total = 2000;
		await publishBatch(f.producer, f.queue, messages(total, 10));

		// Held: the prefetch window is full of unacked deliveries and nothing more is committed.
		await waitFor(
			async () => {
				if (!f.consumer.backpressured) return false;
				const { messageCount: ready } = await f.helper.channel.checkQueue(f.queue);
				return ready === total - f.store.pendingCount - f.config.prefetch;
			},
			{ message: "the consumer to hold a full prefetch window", timeoutMs: 15_000 },
		);
		const pending = f.store.pendingCount;
		assert.ok(pending > f.config.highWater && pending <= f.config.highWater + f.config.batchSize, `pending ${pending} stopped near high water`);
		assert.ok(f.consumer.paused);
		f.consumer.recheck();
		await new Promise((resolve) => setImmediate(resolve));
		assert.equal(f.store.pendingCount, pending, "a recheck above low water commits nothing");

		const processing = startProcessing(f.durable, f.consumer, 100);
		t.after(() => processing.stop());
		await waitFor(() => f.store.processedCount === total, {
			message: "every message to arrive",
			timeoutMs: 15_000,
			detail: () => `processed ${f.store.processedCount}`,
		});
		await waitFor(() => !f.consumer.backpressured, { message: "back pressure to lift", timeoutMs: 15_000 });
		assert.equal(f.consumer.ingested, total);
		assert.ok(f.logger.at("info").some((l) => l.includes("holding deliveries")));
		assert.ok(f.logger.at("info").some((l) => l.includes("taking deliveries again")));
	});

	it("stop() commits the batch in hand and holds later deliveries; close() requeues them", async (t) => {
		const f = await inboxFixture(t, { KEYHIVE_BATCH_SIZE: "10", KEYHIVE_BATCH_MS: "20" });
		await publishBatch(f.producer, f.queue, messages(30, 3, "first"));
		await waitFor(() => f.consumer.ingested === 30, { message: "the first messages to be stored", timeoutMs: 15_000 });
		await f.consumer.stop();
		assert.ok(f.consumer.paused);
		await publishBatch(f.producer, f.queue, messages(10, 3, "later"));
		// Delivered to the stopped consumer (none ready in the queue) but neither stored nor acked.
		await waitFor(async () => (await f.helper.channel.checkQueue(f.queue)).messageCount === 0, {
			message: "the later messages to be delivered",
			timeoutMs: 15_000,
		});
		assert.equal(f.consumer.ingested, 30);
		await f.consumer.close();
		await waitFor(async () => (await f.helper.channel.checkQueue(f.queue)).messageCount === 10, {
			message: "the held messages to be requeued",
			timeoutMs: 15_000,
		});
		assert.equal(f.store.pendingCount, 30);
	});

	it("a full disk stops ingest with one log line and acks nothing unstored; it resumes, in order, when space returns", async (t) => {
		const f = await inboxFixture(t, { KEYHIVE_PREFETCH: "200", KEYHIVE_BATCH_SIZE: "20" });
		const keys = 5;
		const big = (list: OutgoingMessage[]) => list.map((m) => ({ ...m, payload: `${m.payload} ${"x".repeat(500)}` }));
		await publishBatch(f.producer, f.queue, big(messages(100, keys, "before")));
		await waitFor(() => f.consumer.ingested === 100, { message: "the first messages to be stored", timeoutMs: 15_000 });
		const restore = fillDisk(f.store);
		await publishBatch(f.producer, f.queue, big(messages(400, keys, "during")));
		await waitFor(() => f.logger.at("error").some((l) => l.includes("disk full")), { message: "the disk-full line", timeoutMs: 15_000 });
		// The last page's free bytes may have taken a few rows before the disk filled.
		const stored = f.consumer.ingested;
		await new Promise((resolve) => setTimeout(resolve, 2500));
		assert.equal(f.logger.at("error").length, 1, `one line while the disk stays full: ${f.logger.at("error").join(" | ")}`);
		assert.match(f.logger.at("error")[0], /disk full: .* \(SQLITE_FULL\); ingest stopped, nothing acked/);
		assert.ok(f.consumer.paused, "paused while the disk is full");
		assert.ok(stored < 500, `${stored} stored: the disk filled up`);
		assert.equal(f.consumer.ingested, stored, "nothing stored while the disk stays full");
		assert.equal(f.store.pendingCount, stored);
		restore();
		await waitFor(() => f.consumer.ingested === 500, { message: "ingest to resume", timeoutMs: 15_000, detail: () => `ingested ${f.consumer.ingested}` });
		assert.ok(f.logger.at("info").some((l) => l.includes("ingest resumed")));
		assert.equal(f.consumer.duplicates, 0);
		assert.equal((await f.helper.channel.checkQueue(f.queue)).messageCount, 0, "every message acked once stored");
		for (let k = 0; k < keys; k++) {
			const expected = [...messages(100, keys, "before"), ...messages(400, keys, "during")].filter((m) => m.key === `key_${k}`).map((m) => m.id);
			assert.deepEqual(
				f.store.messagesOf(`key_${k}`).map((r) => r.id),
				expected,
				`key_${k} in publish order`,
			);
		}
	});

	it("publishBatch reports progress per confirmed thousand and refuses a missing queue", async (t) => {
		const f = await inboxFixture(t);
		const progress: number[] = [];
		assert.equal(await publishBatch(f.producer, f.queue, messages(2500, 5), (done) => progress.push(done)), 2500);
		assert.deepEqual(progress, [1000, 2000, 2500]);
		await waitFor(() => f.consumer.ingested === 2500, { message: "every published message to be stored", timeoutMs: 15_000 });
		const [first] = f.store.messagesOf("key_0");
		assert.deepEqual({ id: first.id, key: first.key, payload: first.payload }, { id: "m-0", key: "key_0", payload: "payload 0" });
		const missing = uniqueName("missing");
		await assert.rejects(publishBatch(f.producer, missing, messages(1, 1)), new RegExp(`queue "${missing}" is not there`));
	});

	it("declares the queue again and goes on consuming when the broker cancels it (queue deleted)", async (t) => {
		const f = await inboxFixture(t);
		await f.helper.channel.deleteQueue(f.queue);
		await waitFor(() => f.logger.at("warn").some((l) => l.includes("cancelled the consumer")), { message: "the cancel to be noticed", timeoutMs: 15_000 });
		await waitFor(() => f.consumer.isConsuming, { message: "a fresh channel", timeoutMs: 5000 });
		await publishBatch(f.producer, f.queue, messages(5, 5));
		await waitFor(() => f.consumer.ingested === 5, { message: "messages after the cancel to be stored", timeoutMs: 15_000 });
		assert.equal(f.connection.isConnected, true);
	});

	it("says once, clearly, that the queue exists with other arguments, and does not crash", async (t) => {
		const queue = uniqueName("inbox");
		const helper = await openTestChannel();
		await helper.channel.assertQueue(queue, { durable: true });
		const logger = recordingLogger();
		const { sink, dispose } = tempStore();
		const connection = new AmqpConnection(AMQP_URL, { name: uniqueName("consumer"), logger });
		const consumer = new InboxConsumer(connection, sink, readConfig({ KEYHIVE_QUEUE: queue }), logger);
		t.after(async () => {
			await consumer.close();
			await connection.close();
			await deleteAll(helper.model, { queues: [queue, deadLetterQueueOf(queue)], exchanges: [deadLetterExchangeOf(queue)] });
			await helper.close();
			dispose();
		});
		connection.start();
		consumer.start();
		await waitFor(() => logger.at("error").length > 0, { message: "the error line", timeoutMs: 15_000 });
		// Absence of a retry loop can only be seen by waiting past the channel reopen delay (1 s).
		await sleep(1300);
		const errors = logger.at("error");
		assert.equal(errors.length, 1, errors.join("\n"));
		assert.ok(errors[0].includes(`keyhive declares queue "${queue}" (durable, x-single-active-consumer: true`), errors[0]);
		assert.ok(errors[0].includes(`already exists with other arguments`), errors[0]);
		assert.ok(errors[0].includes(`rabbitmqctl delete_queue ${queue}`), errors[0]);
		assert.equal(consumer.isConsuming, false);
		assert.equal(connection.isConnected, true, "the connection stays up");
	});

	it("relays the outbox to the results queue and deletes entries after the confirms, across a connection close", async (t) => {
		const { resultsQueue, logger, store, durable, name, connection, relay, helper } = await relayFixture(t, 200);
		// As the runtime writes them: the result id (the performed message's) in a header, and a body id that is not it.
		const results = (from: number, to: number) =>
			Array.from({ length: to - from }, (_, i) => ({
				key: `key_${i}`,
				body: JSON.stringify({ id: "cart:1", value: from + i }),
				headers: { key: `key_${i}`, [RESULT_ID_HEADER]: `r-${from + i}` },
			}));
		await durable.commit({ outbox: [...results(0, 20), { key: "key_x", body: "not json" }] });
		connection.start();
		relay.start();
		assert.equal(await relay.drain(10_000), true, "outbox drained");
		assert.equal(store.outboxCount, 0);
		const first = await drainQueue(helper.channel, resultsQueue);
		assert.equal(first.length, 21);
		assert.deepEqual(
			first.slice(0, 20).map((m) => m.properties.messageId),
			results(0, 20).map((r) => r.headers[RESULT_ID_HEADER]),
		);
		assert.equal(first[20].properties.messageId, undefined, "an entry without a result id gets no messageId");
		for (const m of first) {
			assert.equal(m.properties.contentType, "application/json");
			assert.equal(m.properties.deliveryMode, 2, "persistent");
		}
		assert.deepEqual(first[3].properties.headers, { key: "key_3" }, "the result id is the messageId, not a header");

		assert.equal(await closeConnectionFromOutside(name), 1);
		await waitFor(() => logger.at("warn").some((l) => l.includes("lost")), { message: "the loss to be noticed", timeoutMs: 15_000 });
		await durable.commit({ outbox: results(20, 40) });
		relay.nudge();
		assert.equal(await relay.drain(15_000), true, "outbox drained after the reconnect");
		const second = await drainQueue(helper.channel, resultsQueue);
		const ids = new Set(second.map((m) => m.properties.messageId));
		for (let i = 20; i < 40; i++) assert.ok(ids.has(`r-${i}`), `r-${i} published`);
		assert.ok(relay.published >= 41);
	});

	it("a confirmed result whose delete fails (a full disk) is neither published again nor lost; it is deleted once the store takes writes", async (t) => {
		const { resultsQueue, logger, store, durable, connection, relay, helper } = await relayFixture(t, 100);
		onFile(store.file, "CREATE TRIGGER fail_delete BEFORE DELETE ON outbox BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
		await durable.commit({ outbox: Array.from({ length: 10 }, (_, i) => ({ key: `key_${i}`, body: JSON.stringify({ id: `r-${i}` }) })) });
		connection.start();
		relay.start();
		await waitFor(() => logger.at("error").some((l) => l.includes("confirmed results from the outbox")), {
			message: "the failed delete to be said",
			timeoutMs: 15_000,
		});
		await new Promise((resolve) => setTimeout(resolve, 1500));
		assert.equal(logger.at("error").length, 1, "said once");
		assert.equal(store.outboxCount, 10);
		assert.equal(store.shipmentOf(store.keysHeld()).outbox.length, 0, "confirmed results are not shipped");
		onFile(store.file, "DROP TRIGGER fail_delete;");
		await waitFor(() => store.outboxCount === 0, { message: "the delete to succeed", timeoutMs: 15_000 });
		assert.ok(logger.at("info").some((l) => l.includes("deleted from the outbox again")));
		assert.equal((await drainQueue(helper.channel, resultsQueue)).length, 10, "each result published once");
	});

	it("when RabbitMQ is unreachable logs one line, does not throw, and keeps retrying quietly", async (t) => {
		const port = await freePort();
		const logger = recordingLogger();
		const connection = new AmqpConnection(`amqp://guest:secret@127.0.0.1:${port}`, { name: uniqueName("unreachable"), logger });
		t.after(() => connection.close());
		connection.start();
		// Three quiet retries after the first failure (backoff 100, 200, 400 ms).
		await waitFor(() => logger.at("debug").filter((l) => l.includes("still not reachable")).length >= 3, { message: "three quiet retries", timeoutMs: 15_000 });
		const loud = logger.lines.filter((l) => l.level !== "debug");
		assert.equal(loud.length, 1, JSON.stringify(loud));
		assert.equal(loud[0].level, "warn");
		assert.equal(loud[0].msg, `RabbitMQ not reachable at amqp://guest:***@127.0.0.1:${port} (ECONNREFUSED); retrying in the background`);
		assert.ok(!logger.lines.some((l) => l.msg.includes("secret")), "the password is never logged");
		assert.equal(connection.isConnected, false);
		await assert.rejects(publishBatch(connection, "any", [{ id: "1", key: "k", payload: "p" }]), /not connected/);
	});
});

describe("a graceful leave while RabbitMQ is out of reach for the leaving node", () => {
	it("hands its unpublished results to their keys' owner, which publishes each of them once", async (t) => {
		const name = uniqueName("leave");
		const dir = tempDir(name).dir;
		const env = { NAMESPACE: name, KEYHIVE_QUEUE: `${name}.inbox`, KEYHIVE_RESULTS_QUEUE: `${name}.processed`, KEYHIVE_ACTORS: "1000", AMQP_URL };
		const [a, b] = [`${name}-a`, `${name}-b`];
		const unreachable = `amqp://guest:guest@127.0.0.1:${await freePort()}`;
		const leaving = new NodeProcess({ nodeID: a, dir, env: { ...env, AMQP_URL: unreachable } });
		const staying = new NodeProcess({ nodeID: b, dir, env });
		const broker = await observer(name);
		const helper = await openTestChannel();
		t.after(async () => {
			await Promise.all([leaving.stop(20_000), staying.stop(20_000)]);
			await broker.stop();
			await deleteAll(helper.model, {
				queues: [env.KEYHIVE_QUEUE, deadLetterQueueOf(env.KEYHIVE_QUEUE), env.KEYHIVE_RESULTS_QUEUE],
				exchanges: [deadLetterExchangeOf(env.KEYHIVE_QUEUE)],
			});
			await helper.close();
			await deleteJournalStream(NATS_URL, name);
			fs.rmSync(dir, { recursive: true, force: true });
		});
		leaving.start();
		staying.start();
		await waitForReady(broker, [a, b], [a, b]);
		const ring = Ring.of([a, b]);
		const keys = Array.from({ length: 1000 }, (_, i) => `key_${i + 1}`)
			.filter((key) => ring.ownerOf(key) === a)
			.slice(0, 50);
		const sent = Array.from({ length: 200 }, (_, i) => ({ id: `r-${i}`, key: keys[i % keys.length], payload: "x" }));
		await broker.call("store.append", { messages: sent }, { nodeID: a });
		await waitFor(
			async () => {
				const stats = await callAction(broker, "store.stats", {}, { nodeID: a });
				return stats.pending === 0 && stats.outbox === sent.length;
			},
			{ message: "every message performed on the leaving node, its results in its outbox", timeoutMs: 15_000 },
		);
		await leaving.stop();
		assert.match(leaving.log(), /everything handed off/);
		assert.doesNotMatch(leaving.log(), /results could not be published/);
		const results: string[] = [];
		await waitFor(
			async () => {
				for (const m of await drainQueue(helper.channel, env.KEYHIVE_RESULTS_QUEUE)) results.push((JSON.parse(m.content.toString()) as { id: string }).id);
				return results.length >= sent.length;
			},
			{
				message: "the leaving node's results published by the node that stays",
				timeoutMs: 20_000,
				detail: () => `${results.length} of ${sent.length} results`,
			},
		);
		await sleep(500);
		for (const m of await drainQueue(helper.channel, env.KEYHIVE_RESULTS_QUEUE)) results.push((JSON.parse(m.content.toString()) as { id: string }).id);
		assert.deepEqual([...results].sort(), sent.map((m) => m.id).sort(), "each result once");
	});
});
