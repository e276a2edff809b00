/**
 * The JetStream journal on a real nats-server: writes grouped and applied in
 * order, fencing by a seal (on a write and when idle), reading a sealed journal
 * back, snapshots and the purge behind them, a server that goes away and comes
 * back, and the one line a node gets when JetStream is missing or refuses.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { connect, DiscardPolicy, headers, type JetStreamManager, type NatsConnection } from "nats";
import { FencedError, type Positioned } from "../../lib/durable/journal";
import { JetStreamJournal } from "../../lib/durable/jetstream-journal";
import { JournalStartError, streamNames } from "../../lib/durable/jetstream-stream";
import { PREVIOUS_HEADER } from "../../lib/durable/instance-logs";
import type { EnteringRow, JournalRecord } from "../../lib/durable/records";
import { Replay } from "../../lib/durable/replay";
import { natsOptions } from "../../lib/nats";
import { Store } from "../../lib/store/store";
import { freePort, NATS_URL, uniqueName } from "../support/env";
import { NatsServer } from "../support/nats-server";
import { tempDir } from "../support/tmp";
import { isSettled, sleep, waitFor } from "../support/wait";

type Logger = { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
const quiet: Logger = { info: () => undefined, warn: () => undefined, error: () => undefined };

function rows(prefix: string, count: number, payloadBytes = 20): EnteringRow[] {
	return Array.from({ length: count }, (_, i) => ({
		id: `${prefix}${i}`,
		key: `key_${i % 50}`,
		stamp: i + 1,
		payload: "x".repeat(payloadBytes),
		receivedAt: 1,
	}));
}

describe("the JetStream journal", () => {
	const namespaces: string[] = [];
	const journals: JetStreamJournal[] = [];
	const stores: Store[] = [];
	let nc: NatsConnection;
	let jsm: JetStreamManager;

	before(async () => {
		nc = await connect(natsOptions(NATS_URL));
		jsm = await nc.jetstreamManager();
	});
	after(async () => {
		for (const j of journals) await j.close();
		for (const s of stores) s.close();
		for (const ns of namespaces) await jsm.streams.delete(streamNames(ns).stream).catch(() => undefined);
		await nc.close();
	});

	async function open(
		namespace: string,
		node: string,
		logger: Logger = quiet,
		url = NATS_URL,
		store = new Store(":memory:"),
	): Promise<{ journal: JetStreamJournal; store: Store }> {
		if (!namespaces.includes(namespace)) namespaces.push(namespace);
		stores.push(store);
		const journal = await JetStreamJournal.open({ connection: natsOptions(url), namespace, replicas: 1, node, target: store, logger, startTimeoutMs: 5000 });
		journals.push(journal);
		return { journal, store };
	}

	async function readAll(reader: JetStreamJournal, instance: string, until: number): Promise<Positioned[]> {
		const entries: Positioned[] = [];
		for await (const entry of reader.logs.read(instance, until)) entries.push(entry);
		return entries;
	}

	/** A logger that notes when a snapshot of the journal is whole and what came before it purged. */
	function snapshotLogger(): { logger: Logger; snapshotted(): Promise<unknown> } {
		const infos: string[] = [];
		const logger: Logger = { ...quiet, info: (m) => infos.push(m) };
		const snapshotted = () => waitFor(() => infos.some((m) => /journal snapshot at .*purged/.test(m)), { timeoutMs: 20_000, message: "a snapshot" });
		return { logger, snapshotted };
	}

	it("stores concurrent writes in fewer publishes than writes, applies each in order and resolves with what applying it returned", async () => {
		const { journal, store } = await open(uniqueName("journal"), "n1");
		const writes = Array.from({ length: 200 }, (_, i) => journal.write({ t: "append", rows: rows(`w${i}-`, 5) }));
		const results = (await Promise.all(writes)) as { stored: unknown[] }[];
		assert.ok(
			results.every((r) => r.stored.length === 5),
			"every write resolved with its rows stored",
		);
		assert.equal(store.pendingCount, 1000);
		const { groups } = journal.stats();
		assert.ok(groups < 100, `200 writes went out in ${groups} publishes`);
	});

	it("a write made while the drain before it is ending is stored without waiting for another write", async () => {
		const { journal, store } = await open(uniqueName("journal"), "n1");
		// Each gap is a number of microtask turns after a write resolves: one of them falls between the
		// drain's last look at its queue and the end of its promise.
		for (let gap = 0; gap < 12; gap++) {
			await journal.write({ t: "append", rows: rows(`g${gap}-a`, 1) });
			for (let turn = 0; turn < gap; turn++) await Promise.resolve();
			const second = journal.write({ t: "append", rows: rows(`g${gap}-b`, 1) });
			const stored = await Promise.race([second.then(() => true), sleep(3000).then(() => false)]);
			assert.ok(stored, `a write ${gap} turns after the one before it waited 3 s without being stored`);
		}
		assert.equal(store.pendingCount, 24);
	});

	it("a sealed instance's next write is refused with FencedError, it tells its listeners once, and the sealed journal reads back whole", async () => {
		const namespace = uniqueName("journal");
		const { journal: writer, store } = await open(namespace, "n1");
		const { journal: taker } = await open(namespace, "n2");
		for (let i = 0; i < 10; i++) await writer.write({ t: "append", rows: rows(`r${i}-`, 3) });
		const fenced: string[] = [];
		writer.onFenced((reason) => fenced.push(reason));
		assert.deepEqual((await taker.logs.instances()).sort(), [writer.instance, taker.instance].sort());

		const sealedAt = await taker.logs.seal(writer.instance, "n2");
		assert.equal(await taker.logs.seal(writer.instance, "n3"), sealedAt, "a second taker's seal is the same message");
		await assert.rejects(writer.write({ t: "append", rows: rows("late", 1) }), FencedError);
		assert.equal(fenced.length, 1);
		assert.match(fenced[0], /sealed by n2/);
		assert.equal(store.pendingCount, 30, "the refused write was not applied");

		const entries = await readAll(taker, writer.instance, sealedAt);
		assert.deepEqual(
			entries.map((e) => e.record.t),
			["open", ...Array(10).fill("append"), "seal"],
		);
		const replay = new Replay();
		for (const entry of entries) replay.add(entry);
		const rebuilt = replay.finish();
		stores.push(rebuilt);
		assert.deepEqual(
			rebuilt.scan(0, 100).map((m) => m.id),
			store.scan(0, 100).map((m) => m.id),
		);

		await taker.logs.remove(writer.instance);
		assert.deepEqual(await taker.logs.instances(), [taker.instance]);
	});

	it("a read fails, rather than skip, when a message in the chain of a journal is not the one its successor names", async () => {
		const namespace = uniqueName("journal");
		const { journal: writer } = await open(namespace, "n1");
		const { journal: taker } = await open(namespace, "n2");
		await writer.write({ t: "epoch" });
		// A message that names a predecessor other than the one before it: what a read that skipped one would see.
		const h = headers();
		h.set(PREVIOUS_HEADER, "1");
		await nc.jetstream().publish(`${streamNames(namespace).subjectPrefix}.${writer.instance}`, "[]", { headers: h });
		const sealedAt = await taker.logs.seal(writer.instance, "n2");
		await assert.rejects(readAll(taker, writer.instance, sealedAt), /has a gap/);
	});

	it("a read that jumps to a snapshot's first part fails when that snapshot never completes: the history it skipped was not purged", async () => {
		const namespace = uniqueName("journal");
		const { journal: writer } = await open(namespace, "n1");
		const { journal: taker } = await open(namespace, "n2");
		await writer.write({ t: "epoch" });
		// A snapshot's first part that names a predecessor the read never saw, and no last part after it.
		const h = headers();
		h.set(PREVIOUS_HEADER, "1000");
		const part: JournalRecord = { t: "snapshot", begin: true, last: false, part: { messages: [], actors: [], processed: [] } };
		await nc.jetstream().publish(`${streamNames(namespace).subjectPrefix}.${writer.instance}`, JSON.stringify([part]), { headers: h });
		const sealedAt = await taker.logs.seal(writer.instance, "n2");
		await assert.rejects(readAll(taker, writer.instance, sealedAt), /a snapshot that never completed/);
	});

	it("an idle instance finds out it was sealed without writing", async () => {
		const namespace = uniqueName("journal");
		const { journal: idle } = await open(namespace, "n1");
		const { journal: taker } = await open(namespace, "n2");
		const fenced: string[] = [];
		idle.onFenced((reason) => fenced.push(reason));
		await taker.logs.seal(idle.instance, "n2");
		await waitFor(() => fenced.length === 1, { timeoutMs: 8000, message: "the idle instance fenced" });
		await assert.rejects(idle.write({ t: "epoch" }), FencedError);
	});

	it("confirmOwner answers from a recent write, and once the lease is past asks JetStream and learns of a seal", async () => {
		const namespace = uniqueName("journal");
		const { journal: writer } = await open(namespace, "n1");
		const { journal: taker } = await open(namespace, "n2");
		await writer.write({ t: "epoch" });
		await writer.confirmOwner();
		await taker.logs.seal(writer.instance, "n2");
		await sleep(700);
		await assert.rejects(writer.confirmOwner(), FencedError);
		await assert.rejects(writer.write({ t: "epoch" }), FencedError);
	});

	it("snapshots once enough was written, purges what came before, and the journal still replays to the same state", async () => {
		const namespace = uniqueName("journal");
		const { logger, snapshotted } = snapshotLogger();
		const { journal, store } = await open(namespace, "n1", logger);
		const { journal: reader } = await open(namespace, "n2");
		// Each row is 2 KB and half of them are performed: the snapshot holds less than the history.
		for (let i = 0; i < 60; i++) {
			const stored = (await journal.write({ t: "append", rows: rows(`s${i}-`, 100, 2000) })) as { stored: { id: string; key: string }[] };
			if (i % 2 === 0) await journal.write({ t: "commit", commit: { done: stored.stored.map((r) => ({ id: r.id, key: r.key })) }, at: i });
		}
		await snapshotted();
		const info = await jsm.streams.info(streamNames(namespace).stream, { subjects_filter: ">" });
		const held = info.state.subjects?.[`${streamNames(namespace).subjectPrefix}.${journal.instance}`] ?? 0;
		assert.ok(held < 60, `the writer's subject holds ${held} messages after a snapshot (90 were written)`);

		const sealedAt = await reader.logs.seal(journal.instance, "n2");
		const entries = await readAll(reader, journal.instance, sealedAt);
		assert.equal(entries[0].record.t, "snapshot", "what was before the snapshot is purged");
		const replay = new Replay();
		for (const entry of entries) replay.add(entry);
		const rebuilt = replay.finish();
		stores.push(rebuilt);
		assert.equal(rebuilt.pendingCount, store.pendingCount);
		assert.equal(rebuilt.processedCount, store.processedCount);
		assert.deepEqual(
			rebuilt.scan(0, 10_000).map((m) => m.id),
			store.scan(0, 10_000).map((m) => m.id),
		);
	});

	it("a snapshot of a store file holds no write up: writes made while it is taken come between its parts, and the journal replays to the same state", async () => {
		const namespace = uniqueName("journal");
		const files = tempDir("keyhive-journal-snapshot-");
		try {
			const { logger, snapshotted } = snapshotLogger();
			const { journal, store } = await open(namespace, "n1", logger, NATS_URL, files.store("n1"));
			const { journal: reader } = await open(namespace, "n2");
			// 2 KB rows, writes kept in flight: the snapshot (due at 8 MB) is taken while they go on.
			const writes: Promise<unknown>[] = [];
			for (let i = 0; i < 90; i++) {
				writes.push(
					journal.write({ t: "append", rows: rows(`w${i}-`, 100, 2000) }).then((stored) => {
						const done = (stored as { stored: { id: string; key: string }[] }).stored.filter((_, j) => j % 2 === 0);
						return journal.write({ t: "commit", commit: { done: done.map((r) => ({ id: r.id, key: r.key })) }, at: i });
					}),
				);
				if (writes.length >= 4) await writes.shift();
			}
			await Promise.all(writes);
			await snapshotted();

			const sealedAt = await reader.logs.seal(journal.instance, "n2");
			const entries = await readAll(reader, journal.instance, sealedAt);
			assert.equal(entries[0].record.t, "snapshot", "what was before the snapshot is purged");
			const last = entries.findIndex((e) => e.record.t === "snapshot" && e.record.last);
			assert.ok(last > 0, "the snapshot's last part is in the journal");
			const between = entries.slice(1, last).filter((e) => e.record.t !== "snapshot");
			assert.ok(between.length > 0, "writes were stored between the snapshot's first and last parts");
			const replay = new Replay();
			for (const entry of entries) replay.add(entry);
			const rebuilt = replay.finish();
			stores.push(rebuilt);
			assert.equal(replay.snapshots, 1);
			assert.equal(rebuilt.pendingCount, store.pendingCount);
			assert.equal(rebuilt.processedCount, store.processedCount);
			assert.deepEqual(
				rebuilt.scan(0, 100_000).map((m) => m.id),
				store.scan(0, 100_000).map((m) => m.id),
			);
		} finally {
			files.cleanup();
		}
	});

	it("a read that runs while the writer snapshots and purges goes on from the snapshot's first part and replays to the writer's state", async () => {
		const namespace = uniqueName("journal");
		const { logger, snapshotted } = snapshotLogger();
		const { journal: writer, store } = await open(namespace, "n1", logger);
		const { journal: taker } = await open(namespace, "n2");
		for (let i = 0; i < 5; i++) await writer.write({ t: "append", rows: rows(`h${i}-`, 10) });
		const read = taker.logs.read(writer.instance, Number.MAX_SAFE_INTEGER)[Symbol.asyncIterator]();
		const replay = new Replay();
		for (let i = 0; i < 3; i++) replay.add((await read.next()).value as Positioned);
		// 9 MB more: a snapshot is due, and once it is whole what the read has not reached yet is purged.
		for (let i = 0; i < 45; i++) await writer.write({ t: "append", rows: rows(`s${i}-`, 100, 2000) });
		await snapshotted();
		const info = await jsm.streams.info(streamNames(namespace).stream, { subjects_filter: ">" });
		const held = info.state.subjects?.[`${streamNames(namespace).subjectPrefix}.${writer.instance}`] ?? 0;
		assert.ok(held < 45, `the writer's subject holds ${held} messages after its snapshot (51 were written)`);

		await taker.logs.seal(writer.instance, "n2");
		for (let next = await read.next(); !next.done; next = await read.next()) {
			replay.add(next.value);
			if (next.value.record.t === "seal") break;
		}
		await read.return?.(undefined);
		const rebuilt = replay.finish();
		stores.push(rebuilt);
		assert.equal(replay.snapshots, 1);
		assert.deepEqual(
			rebuilt.scan(0, 100_000).map((m) => m.id),
			store.scan(0, 100_000).map((m) => m.id),
		);
	});

	describe("on a nats-server of its own", () => {
		const dir = tempDir("keyhive-journal-");
		let server: NatsServer;
		before(async () => {
			server = new NatsServer(await freePort(), dir.dir);
			await server.start();
		});
		after(async () => {
			await server.stop();
			dir.cleanup();
		});

		it("a write while the server is down waits, nothing of it applied, and completes once the server is back", async () => {
			const errors: string[] = [];
			const infos: string[] = [];
			const logger: Logger = { info: (m) => infos.push(m), warn: () => undefined, error: (m) => errors.push(m) };
			const { journal, store } = await open(uniqueName("journal"), "n1", logger, server.url());
			await journal.write({ t: "append", rows: rows("before", 2) });
			await server.stop("SIGKILL");
			const write = journal.write({ t: "append", rows: rows("during", 2) });
			await sleep(3000);
			assert.equal(await isSettled(write), false, "the write waits");
			assert.equal(store.pendingCount, 2, "nothing of it is applied");
			assert.equal(errors.length, 1, `one error line while JetStream cannot store: ${errors.join(" | ")}`);
			assert.match(errors[0], /JetStream cannot store now/);
			await server.start();
			await write;
			assert.equal(store.pendingCount, 4);
			assert.ok(
				infos.some((m) => /stores again/.test(m)),
				"it says when it stores again",
			);
		});

		it("a journal whose stream refuses to store fails to open with one line naming the cause", async () => {
			const namespace = uniqueName("journal");
			const own = await connect({ servers: server.url() });
			try {
				const names = streamNames(namespace);
				// A stream already full, that discards nothing: what an account at its limits does to every write.
				await (await own.jetstreamManager()).streams.add({
					name: names.stream,
					subjects: [`${names.subjectPrefix}.*`],
					max_msgs: 1,
					discard: DiscardPolicy.New,
				});
				await own.jetstream().publish(`${names.subjectPrefix}.other`, "full");
				const err = await open(namespace, "n1", quiet, server.url()).then(
					() => null,
					(e: Error) => e,
				);
				assert.ok(err instanceof JournalStartError, `${err}`);
				assert.equal(err.message.split("\n").length, 1);
				assert.match(err.message, /^keyhive: the journal cannot open: JetStream refuses to store/);
			} finally {
				await own.close();
			}
		});
	});

	it("fails to open with one line when the server runs without JetStream", async () => {
		const dir = tempDir("keyhive-nojs-");
		const server = new NatsServer(await freePort(), dir.dir, undefined, { jetstream: false });
		await server.start();
		try {
			const err = await open(uniqueName("journal"), "n1", quiet, server.url()).then(
				() => null,
				(e: Error) => e,
			);
			assert.ok(err instanceof JournalStartError, `${err}`);
			assert.equal(err.message.split("\n").length, 1);
			assert.match(err.message, /has no JetStream.*-js/);
		} finally {
			await server.stop();
			dir.cleanup();
		}
	});
});
