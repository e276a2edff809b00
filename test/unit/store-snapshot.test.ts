/**
 * Snapshots of a store: read in parts while the store goes on changing
 * (Store.openSnapshot), and replayed from a journal (Replay), whole, cut off,
 * after a purge, and with records written between their parts.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Positioned } from "../../lib/durable/journal";
import type { JournalRecord } from "../../lib/durable/records";
import { Replay } from "../../lib/durable/replay";
import { type Shipment, Store } from "../../lib/store/store";
import { applyFrom, contents, row } from "../support/records";
import { tempDir } from "../support/tmp";

const dir = tempDir("keyhive-snapshot-");
const stores: Store[] = [];
after(() => {
	for (const s of stores) s.close();
	dir.cleanup();
});

function fresh(): Store {
	const store = new Store(":memory:");
	stores.push(store);
	return store;
}

/** A store holding 1,500 rows of which 600 were performed, 50 actor records and 20 results. */
function loaded(store: Store): Store {
	applyFrom(store, 1, { t: "append", rows: Array.from({ length: 1500 }, (_, i) => row(`m${i}`, `key_${i % 50}`, i + 1, "x".repeat(100))) });
	applyFrom(store, 2, {
		t: "commit",
		commit: {
			done: Array.from({ length: 600 }, (_, i) => ({ id: `m${i}`, key: `key_${i % 50}` })),
			actors: Array.from({ length: 50 }, (_, i) => ({ id: `key_${i}`, payload: { n: i }, timeout: 0, deleted: false })),
			outbox: Array.from({ length: 20 }, (_, i) => ({ uid: `u${i}`, key: `key_${i}`, body: `${i}` })),
		},
		at: 10,
	});
	return store;
}

/** What a writer does after its snapshot began: rows of every table changed, some in the snapshot's later parts. */
const AFTER_BEGIN: JournalRecord[] = [
	{ t: "commit", commit: { done: [{ id: "m1499", key: "key_49" }], actors: [{ id: "key_49", payload: { n: 1000 }, timeout: 0, deleted: false }] }, at: 20 },
	{ t: "append", rows: [{ ...row("late-1", "key_49", 5000), receivedAt: 1 }] },
	{ t: "published", uids: ["u19"] },
	{ t: "append", rows: [{ ...row("late-2", "key_3", 5001), receivedAt: 2 }] },
];

describe("Store.openSnapshot: the store as it was when the reader opened", () => {
	for (const kind of ["file", "memory"] as const) {
		it(`a reader of a store in ${kind} reads what the store held when it opened, while the store goes on changing`, () => {
			const source = loaded(kind === "file" ? dir.store(`reader-${Math.random()}`) : fresh());
			const before = contents(source);
			const reader = source.openSnapshot(16 * 1024);
			const parts: { part: Shipment; last: boolean }[] = [];
			const first = reader.next();
			assert.ok(first);
			parts.push(first);
			for (const [i, record] of AFTER_BEGIN.entries()) applyFrom(source, 100 + i, record);
			for (let next = reader.next(); next; next = reader.next()) parts.push(next);
			reader.close();

			assert.ok(parts.length > 3, `a snapshot in ${parts.length} parts`);
			assert.deepEqual(
				parts.map((p) => p.last),
				parts.map((_, i) => i === parts.length - 1),
				"only the last part says it is the last",
			);
			const copy = fresh();
			for (const { part } of parts) copy.receive(part);
			assert.deepEqual(contents(copy), before);
			assert.equal(source.pendingCount, 900 - 1 + 2, "the store itself went on changing");
		});
	}

	it("a reader of an empty store gives one empty part, the last", () => {
		const reader = dir.store(`empty-${Math.random()}`).openSnapshot(1024);
		assert.deepEqual(reader.next(), { part: { messages: [], actors: [], processed: [], outbox: [], dead: [] }, last: true });
		assert.equal(reader.next(), null);
	});
});

describe("Replay: a journal with snapshots", () => {
	it("parts of a snapshot, replayed into a fresh store, give a store equal to the source", () => {
		const source = fresh();
		const rows = Array.from({ length: 1300 }, (_, i) => ({ ...row(`m${i}`, `key_${i % 40}`, 1000 - (i % 7) + i * 10), headers: i % 3 ? null : { i } }));
		applyFrom(source, 1, { t: "append", rows });
		applyFrom(source, 2, {
			t: "commit",
			commit: {
				done: rows.slice(0, 600).map((r) => ({ id: r.id, key: r.key })),
				failed: ["m700", "m701"],
				dead: [{ id: "m800", reason: "broke" }],
				actors: Array.from({ length: 700 }, (_, i) => ({ id: `key_${i}`, payload: { n: i }, timeout: i % 5, deleted: i % 11 === 0 })),
				outbox: Array.from({ length: 30 }, (_, i) => ({ uid: `u${i}`, key: `key_${i}`, body: `${i}` })),
			},
			at: 77,
		});
		applyFrom(source, 3, { t: "commit", commit: { actors: [{ id: "key_1", payload: "later", timeout: 1, deleted: false }] }, at: 78 });

		const parts = snapshotOf(source, 16 * 1024);
		assert.ok(parts.length > 3, `a snapshot in ${parts.length} parts`);
		const copy = replayed(parts.map((record, i) => ({ record, seq: 100 + i })));

		assert.equal(copy.pendingCount, source.pendingCount);
		assert.equal(copy.actorRecordCount, 700);
		assert.equal(copy.processedCount, 600);
		assert.equal(copy.deadCount, 1);
		assert.equal(copy.outboxCount, 30);
		assert.deepEqual(copy.actor("key_1"), source.actor("key_1"), "actor versions travel");
		assert.equal(copy.actor("key_1")!.version, 3);
		assert.deepEqual(contents(copy), contents(source));
		const results = (s: Store) => s.shipmentOf(s.keysHeld()).outbox.sort((a, b) => a.uid.localeCompare(b.uid));
		assert.deepEqual(results(copy), results(source), "results keep their uid and time");
	});

	it("a complete snapshot replaces what came before it; records after it apply on top", () => {
		const source = fresh();
		applyFrom(source, 1, { t: "append", rows: [row("kept", "k", 1)] });
		const copy = replayed([
			{ record: { t: "append", rows: [row("purged-history", "k", 1)] }, seq: 1 },
			...snapshotOf(source, 1024).map((record, i) => ({ record, seq: 10 + i })),
			{ record: { t: "append", rows: [row("after", "k", 2)] }, seq: 20 },
		]);
		assert.deepEqual(
			copy.scan(0, 10).map((m) => m.id),
			["kept", "after"],
		);
	});

	it("a snapshot cut off before its last part is ignored: the records before it stand", () => {
		const source = fresh();
		applyFrom(source, 1, { t: "append", rows: Array.from({ length: 1500 }, (_, i) => row(`m${i}`, "k", i + 1, "x".repeat(100))) });
		const parts = snapshotOf(source, 16 * 1024);
		assert.ok(parts.length > 2, `a snapshot in ${parts.length} parts`);
		const history: Positioned[] = [{ record: { t: "append", rows: [row("only", "k", 1)] }, seq: 1 }];
		const cutBySeal = replayed([
			...history,
			...parts.slice(0, 2).map((record, i) => ({ record, seq: 2 + i })),
			{ record: { t: "seal", by: "n2", at: 1 }, seq: 9 },
		]);
		assert.deepEqual(
			cutBySeal.scan(0, 100).map((m) => m.id),
			["only"],
		);
		const cutAtEnd = replayed([...history, ...parts.slice(0, 2).map((record, i) => ({ record, seq: 2 + i }))]);
		assert.deepEqual(
			cutAtEnd.scan(0, 100).map((m) => m.id),
			["only"],
		);
	});

	it("a snapshot of an empty store is one empty part", () => {
		const s = fresh();
		const first = s.snapshotPart(null, 1024);
		assert.ok(first);
		assert.deepEqual(first.part, { messages: [], actors: [], processed: [], outbox: [], dead: [] });
		assert.equal(s.snapshotPart(first.cursor, 1024), null);
	});
});

/** The parts of a snapshot of store, as the journal records them. */
function snapshotOf(store: Store, partBytes: number): JournalRecord[] {
	const parts: Shipment[] = [];
	for (let next = store.snapshotPart(null, partBytes); next; next = store.snapshotPart(next.cursor, partBytes)) parts.push(next.part);
	return parts.map((part, i) => ({ t: "snapshot", begin: i === 0, last: i === parts.length - 1, part }));
}

function replayed(entries: Positioned[]): Store {
	const replay = new Replay();
	for (const entry of entries) replay.add(entry);
	const store = replay.finish();
	stores.push(store);
	return store;
}

describe("Replay: a snapshot taken while writes went on", () => {
	/** The writer's log: its history, then a snapshot of it whose parts records written after its first part come between. */
	function interleavedLog() {
		const writer = loaded(fresh());
		const history: Positioned[] = [
			{ record: { t: "open", node: "n1", at: 1 }, seq: 1 },
			...contentsAsRecords(writer).map((record, i) => ({ record, seq: 2 + i })),
		];
		const parts = snapshotOf(writer, 16 * 1024);
		assert.ok(parts.length >= AFTER_BEGIN.length, `a snapshot in ${parts.length} parts`);
		// At the positions the log below gives them (an actor record's version is its position).
		for (const [i, record] of AFTER_BEGIN.entries()) applyFrom(writer, i < AFTER_BEGIN.length - 1 ? 51 + i : 90, record);
		// Message by message, as the journal writes them: the first part alone, then each record with a part.
		const interleaved: Positioned[] = [{ record: parts[0], seq: 50 }];
		for (let i = 1; i < parts.length; i++) {
			const seq = 50 + i;
			if (i - 1 < AFTER_BEGIN.length - 1) interleaved.push({ record: AFTER_BEGIN[i - 1], seq });
			interleaved.push({ record: parts[i], seq });
		}
		const afterLast: Positioned = { record: AFTER_BEGIN[AFTER_BEGIN.length - 1], seq: 90 };
		return { writer, history, interleaved, parts, afterLast };
	}

	it("records between a snapshot's parts apply after its last part, whether the history before it was read or purged", () => {
		const { writer, history, interleaved, afterLast } = interleavedLog();
		const expected = contents(writer);
		assert.deepEqual(contents(replayed([...history, ...interleaved, afterLast])), expected, "with the history");
		assert.deepEqual(contents(replayed([...interleaved, afterLast])), expected, "purged up to the first part");
		// A reader that raced the purge saw only the end of the history.
		assert.deepEqual(contents(replayed([history[history.length - 1], ...interleaved, afterLast])), expected, "with part of the history");
	});

	it("a snapshot cut off between its parts is ignored: the history and every record after its first part stand", () => {
		const { history, interleaved, parts } = interleavedLog();
		const cut = interleaved.filter((e) => e.record !== parts[parts.length - 1]);
		const withoutSnapshot = fresh();
		for (const entry of [...history, ...cut]) if (entry.record.t !== "snapshot") withoutSnapshot.applyAll([entry]);
		assert.deepEqual(contents(replayed([...history, ...cut])), contents(withoutSnapshot));
		assert.ok(
			cut.some((e) => e.record.t !== "snapshot"),
			"records came between the parts",
		);
	});
});

/** The records that build store's content from nothing: one receive of all it holds. */
function contentsAsRecords(store: Store): JournalRecord[] {
	const all = store.shipmentOf(store.keysHeld());
	store.release(all);
	return [{ t: "receive", shipment: all }];
}
