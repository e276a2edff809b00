/**
 * Store.applyAll, record by record: what each journal record does to the store, and
 * that a group of records is all or nothing, in the file and in the store's memory.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { Positioned } from "../../lib/durable/journal";
import type { JournalRecord } from "../../lib/durable/records";
import { Replay } from "../../lib/durable/replay";
import { type Shipment, Store, type StoredMessage } from "../../lib/store/store";

const stores: Store[] = [];
after(() => {
	for (const s of stores) s.close();
});

function fresh(): Store {
	const store = new Store(":memory:");
	stores.push(store);
	return store;
}

/** Applies records at consecutive positions from `from`, in one group. */
function applyFrom(store: Store, from: number, ...records: JournalRecord[]): unknown[] {
	return store.applyAll(records.map((record, i): Positioned => ({ record, seq: from + i })));
}

function row(id: string, key: string, stamp: number, payload = `p-${id}`) {
	return { id, key, stamp, payload };
}

function shipped(id: string, key: string, stamp: number, extra: Partial<Shipment["messages"][number]> = {}): Shipment["messages"][number] {
	return { id, key, stamp, payload: `p-${id}`, headers: null, receivedAt: 1000, attempts: 0, ...extra };
}

/** A record no store can apply: a row without payload breaks a NOT NULL constraint. */
const BROKEN: JournalRecord = { t: "append", rows: [{ id: "broken", key: "k", stamp: 1, payload: undefined as unknown as string }] };

/** Everything a store holds, without its local seqs, in a comparable order (the results taken to read them are given back). */
function contents(store: Store) {
	const all = store.shipmentOf(store.keysHeld());
	store.release(all);
	const byId = <T extends { id: string }>(list: T[]) => [...list].sort((a, b) => a.id.localeCompare(b.id));
	return {
		order: store.scan(0, 1_000_000).map((m) => m.id),
		messages: byId(all.messages),
		actors: byId(all.actors),
		processed: byId(all.processed),
		outbox: store
			.outbox(1_000_000)
			.map(({ seq: _seq, ...o }) => o)
			.sort((a, b) => a.uid.localeCompare(b.uid)),
		dead: byId(all.dead),
	};
}

describe("Store.applyAll: a group that fails", () => {
	/** A store with some of everything, and a shipment of key "s" taken from it (its result claimed). */
	function loaded() {
		const s = fresh();
		applyFrom(
			s,
			1,
			{ t: "append", rows: [row("a", "k", 10), row("b", "k", 11), row("s1", "s", 12)] },
			{ t: "commit", commit: { outbox: [{ uid: "r-s", key: "s", body: '"rs"' }] }, at: 500 },
		);
		const shipment = s.shipmentOf(["s"]);
		assert.deepEqual(
			shipment.outbox.map((o) => o.uid),
			["r-s"],
		);
		return { s, shipment };
	}

	function memory(s: Store) {
		return { pending: s.pendingCount, counts: { ...s.counts }, journal: s.meta("journal"), newestStamp: s.newestStamp };
	}

	it("a group whose last record throws leaves pendingCount, counts, the newest stamp and the journal position as before", () => {
		const { s, shipment } = loaded();
		const before = memory(s);
		const held = contents(s);
		assert.deepEqual(before, { pending: 3, counts: { appended: 3, received: 0, duplicates: 0 }, journal: "2", newestStamp: 12 });
		assert.throws(() =>
			applyFrom(
				s,
				3,
				{ t: "append", rows: [row("c", "k", 20), row("a", "k", 21)] },
				{ t: "receive", shipment: { messages: [shipped("d", "j", 30)], actors: [], processed: [] } },
				{ t: "commit", commit: { done: [{ id: "b", key: "k" }] }, at: 600 },
				{ t: "forget", forgotten: Store.forgottenOf(shipment) },
				BROKEN,
			),
		);
		assert.deepEqual(memory(s), before);
		assert.deepEqual(contents(s), held, "the file holds what it held");
		assert.equal(s.pendingCount, s.scan(0, 100).length, "pendingCount counts the rows in the table");
	});

	it("listeners hear nothing of a group that rolled back, and every record of the next group once it commits", () => {
		const { s } = loaded();
		const stored: string[] = [];
		let outbox = 0;
		s.onStored((rows) => stored.push(...rows.map((r) => r.id)));
		s.onOutbox(() => outbox++);
		const group: JournalRecord[] = [
			{ t: "append", rows: [row("c", "k", 20)] },
			{
				t: "receive",
				shipment: { messages: [shipped("d", "j", 30)], actors: [], processed: [], outbox: [{ uid: "r-j", key: "j", body: "1", headers: null, createdAt: 1 }] },
			},
			{ t: "commit", commit: { outbox: [{ uid: "r-k", key: "k", body: "2" }] }, at: 600 },
		];
		assert.throws(() => applyFrom(s, 3, ...group, BROKEN));
		assert.deepEqual(stored, []);
		assert.equal(outbox, 0);
		applyFrom(s, 3, ...group);
		assert.deepEqual(stored, ["c", "d"]);
		assert.equal(outbox, 2);
		assert.equal(s.pendingCount, 5);
		assert.deepEqual(s.counts, { appended: 4, received: 1, duplicates: 0 });
		assert.equal(s.meta("journal"), "5");
	});

	it("a listener already sees the whole group applied, counters included", () => {
		const s = fresh();
		const seen: number[] = [];
		s.onStored(() => seen.push(s.pendingCount));
		applyFrom(s, 1, { t: "append", rows: [row("a", "k", 1)] }, { t: "append", rows: [row("b", "k", 2), row("c", "k", 3)] });
		assert.deepEqual(seen, [3, 3]);
	});

	it("a shipment's results stay claimed when the forget of it rolls back: neither published nor shipped again, and a release gives them back", () => {
		const { s, shipment } = loaded();
		assert.throws(() => applyFrom(s, 3, { t: "forget", forgotten: Store.forgottenOf(shipment) }, BROKEN));
		assert.deepEqual(s.takeOutbox(10), [], "the result is still in the shipment");
		assert.deepEqual(s.shipmentOf(["s"]).outbox, [], "and not shipped twice");
		s.release(shipment);
		assert.deepEqual(
			s.takeOutbox(10).map((o) => o.uid),
			["r-s"],
		);
	});

	it("a failed group is tried again whole at the same positions, and the next position follows it", () => {
		const { s } = loaded();
		const group: JournalRecord[] = [{ t: "append", rows: [row("c", "k", 20)] }, { t: "epoch" }];
		assert.throws(() => applyFrom(s, 3, ...group, BROKEN));
		assert.equal(s.meta("journal"), "2");
		assert.deepEqual(applyFrom(s, 3, ...group)[1], 4);
		assert.equal(s.meta("journal"), "4");
		assert.equal(s.pendingCount, 4);
	});
});

describe("Store.applyAll: append", () => {
	it("keeps the stamps given and orders a key's rows by stamp, not by arrival", () => {
		const s = fresh();
		const [result] = applyFrom(s, 1, { t: "append", rows: [row("late", "k", 300), row("early", "k", 100), row("other", "j", 200)] }) as {
			stored: StoredMessage[];
			duplicates: number;
		}[];
		assert.deepEqual(
			result.stored.map((r) => [r.id, r.stamp]),
			[
				["late", 300],
				["early", 100],
				["other", 200],
			],
		);
		applyFrom(s, 2, { t: "append", rows: [row("middle", "k", 150)] });
		assert.deepEqual(
			s.messagesOf("k").map((r) => r.id),
			["early", "middle", "late"],
		);
		assert.deepEqual(
			s.scan(0, 10).map((r) => r.id),
			["late", "early", "other", "middle"],
			"scan is arrival order",
		);
		assert.equal(s.newestStamp, 300);
	});

	it("keeps receivedAt, headers and attempts, drops ids held or processed, and rows without a stamp go after the newest", () => {
		const s = fresh();
		applyFrom(s, 1, { t: "append", rows: [{ ...row("a", "k", 50), headers: { h: 1 }, receivedAt: 1234, attempts: 2 }, row("done", "k", 51)] });
		applyFrom(s, 2, { t: "commit", commit: { done: [{ id: "done", key: "k" }] }, at: 1 });
		const [again] = applyFrom(s, 3, { t: "append", rows: [row("a", "k", 60), row("done", "k", 61), row("b", "k", 62), row("b", "k", 63)] }) as {
			stored: StoredMessage[];
			duplicates: number;
		}[];
		assert.equal(again.duplicates, 3);
		assert.deepEqual(
			again.stored.map((r) => r.id),
			["b"],
		);
		const [a] = s.messagesOf("k");
		assert.deepEqual([a.id, a.stamp, a.headers, a.receivedAt, a.attempts], ["a", 50, { h: 1 }, 1234, 2]);
		const [plain] = s.append([{ id: "c", key: "k", payload: "x" }]).stored;
		assert.equal(plain.stamp, 63, "one above the newest stamp this store held");
		assert.deepEqual(s.counts, { appended: 4, received: 0, duplicates: 3 });
	});
});

describe("Store.applyAll: receive", () => {
	const shipment = (): Shipment => ({
		messages: [shipped("m1", "k", 10, { attempts: 2, headers: { h: "v" } }), shipped("m2", "k", 11)],
		actors: [{ id: "k", payload: { n: 1 }, timeout: 5, deleted: false, version: 4 }],
		processed: [{ id: "old", key: "k", at: 900 }],
		outbox: [{ uid: "r1", key: "k", body: '"r"', headers: { x: 1 }, createdAt: 800 }],
		dead: [{ ...shipped("gone", "k", 9), attempts: 3, reason: "broke", diedAt: 700 }],
	});

	it("the same shipment twice keeps one copy of every row, record, result and dead letter", () => {
		const s = fresh();
		const [first] = applyFrom(s, 1, { t: "receive", shipment: shipment() }) as { stored: StoredMessage[]; duplicates: number }[];
		assert.equal(first.stored.length, 2);
		const once = contents(s);
		const [second] = applyFrom(s, 2, { t: "receive", shipment: shipment() }) as { stored: StoredMessage[]; duplicates: number }[];
		assert.deepEqual(second, { stored: [], duplicates: 2 });
		assert.deepEqual(contents(s), once);
		assert.equal(s.pendingCount, 2);
		assert.equal(s.outboxCount, 1);
		assert.equal(s.deadCount, 1);
		assert.equal(s.processedCount, 1);
		assert.deepEqual(
			once.messages.map((m) => [m.id, m.stamp, m.attempts, m.headers, m.receivedAt]),
			[
				["m1", 10, 2, { h: "v" }, 1000],
				["m2", 11, 0, null, 1000],
			],
		);
		assert.deepEqual(s.shipmentOf(["k"]).outbox, [{ uid: "r1", key: "k", body: '"r"', headers: { x: 1 }, createdAt: 800 }]);
		assert.deepEqual(
			once.dead.map((d) => [d.id, d.reason, d.diedAt, d.attempts]),
			[["gone", "broke", 700, 3]],
		);
		assert.deepEqual(s.counts, { appended: 0, received: 2, duplicates: 2 });
	});

	it("an actor record older than the one held never overwrites it; a newer one does", () => {
		const s = fresh();
		const record = (payload: string, version: number) => ({ id: "k", payload, timeout: 0, deleted: false, version });
		const receive = (seq: number, version: number, payload: string) =>
			applyFrom(s, seq, { t: "receive", shipment: { messages: [], actors: [record(payload, version)], processed: [] } });
		receive(1, 5, "five");
		receive(2, 3, "three");
		assert.deepEqual(s.actor("k"), record("five", 5), "an older copy met a newer one");
		applyFrom(s, 4, { t: "commit", commit: { actors: [{ id: "k", payload: "commit at 4", timeout: 0, deleted: false }] }, at: 1 });
		assert.deepEqual(s.actor("k"), record("five", 5), "nor does a commit at an older position");
		receive(3, 7, "seven");
		assert.deepEqual(s.actor("k"), record("seven", 7));
		applyFrom(s, 9, { t: "commit", commit: { actors: [{ id: "k", payload: null, timeout: 0, deleted: true }] }, at: 1 });
		assert.deepEqual(s.actor("k"), { id: "k", payload: null, timeout: 0, deleted: true, version: 9 }, "a later commit wins, a delete too");
	});

	it("a pending row whose id the shipment says was processed is dropped here", () => {
		const s = fresh();
		applyFrom(s, 1, { t: "append", rows: [row("m", "k", 1), row("n", "k", 2)] });
		applyFrom(s, 2, { t: "receive", shipment: { messages: [], actors: [], processed: [{ id: "m", key: "k", at: 5 }] } });
		assert.deepEqual(
			s.scan(0, 10).map((r) => r.id),
			["n"],
		);
		assert.equal(s.pendingCount, 1);
	});
});

describe("Store.applyAll: commit", () => {
	it("deletes done rows, remembers their ids at the record's time, bumps failed ones, dead-letters at the record's time, versions actors by position, keeps result uids", () => {
		const s = fresh();
		applyFrom(s, 1, { t: "append", rows: [row("a", "k", 1), row("b", "k", 2), row("c", "k", 3), row("d", "j", 4)] });
		let outbox = 0;
		s.onOutbox(() => outbox++);
		applyFrom(s, 2, {
			t: "commit",
			commit: {
				done: [{ id: "a", key: "k" }],
				failed: ["b"],
				dead: [{ id: "c", reason: "broke" }],
				actors: [{ id: "k", payload: { n: 1 }, timeout: 30, deleted: false }],
				outbox: [{ uid: "u-1", key: "k", body: '"r"', headers: { h: 1 } }],
			},
			at: 4242,
		});
		assert.deepEqual(
			s.scan(0, 10).map((r) => [r.id, r.attempts]),
			[
				["b", 1],
				["d", 0],
			],
		);
		assert.equal(s.pendingCount, 2);
		assert.deepEqual(s.shipmentOf(["k"]).processed, [{ id: "a", key: "k", at: 4242 }]);
		assert.deepEqual(
			s.dead(10).map((d) => [d.id, d.reason, d.diedAt, d.attempts]),
			[["c", "broke", 4242, 1]],
		);
		assert.deepEqual(s.actor("k"), { id: "k", payload: { n: 1 }, timeout: 30, deleted: false, version: 2 });
		assert.deepEqual(
			s.outbox(10).map((o) => [o.uid, o.key, o.body, o.headers]),
			[["u-1", "k", '"r"', { h: 1 }]],
		);
		assert.equal(outbox, 1);
	});

	it("a commit of rows that are not here (shipped away meanwhile) removes nothing and keeps pendingCount right", () => {
		const s = fresh();
		applyFrom(s, 1, { t: "append", rows: [row("a", "k", 1)] });
		applyFrom(s, 2, { t: "commit", commit: { done: [{ id: "elsewhere", key: "k" }], dead: [{ id: "nowhere", reason: "x" }] }, at: 1 });
		assert.equal(s.pendingCount, 1);
		assert.equal(s.deadCount, 0);
	});
});

describe("Store.applyAll: forget", () => {
	it("deletes what a shipment held, and an actor record only at the version shipped", () => {
		const s = fresh();
		applyFrom(s, 1, { t: "append", rows: [row("m", "k", 1), row("n", "k", 2), row("o", "j", 3), row("stay", "x", 4)] });
		applyFrom(s, 2, {
			t: "commit",
			commit: {
				done: [{ id: "n", key: "k" }],
				dead: [{ id: "o", reason: "r" }],
				actors: [
					{ id: "k", payload: 1, timeout: 0, deleted: false },
					{ id: "j", payload: 1, timeout: 0, deleted: false },
				],
				outbox: [{ uid: "u", key: "k", body: "1" }],
			},
			at: 10,
		});
		const shipment = s.shipmentOf(["k", "j"]);
		assert.deepEqual(shipment.actors.map((a) => [a.id, a.version]).sort(), [
			["j", 2],
			["k", 2],
		]);
		// The actor of k commits again before its shipment is forgotten (it came back meanwhile).
		applyFrom(s, 3, { t: "commit", commit: { actors: [{ id: "k", payload: 2, timeout: 0, deleted: false }] }, at: 11 });
		applyFrom(s, 4, { t: "forget", forgotten: Store.forgottenOf(shipment) });
		assert.deepEqual(s.actor("k"), { id: "k", payload: 2, timeout: 0, deleted: false, version: 3 }, "the newer record stays");
		assert.equal(s.actor("j"), undefined, "the record shipped is gone");
		assert.deepEqual(
			s.scan(0, 10).map((r) => r.id),
			["stay"],
		);
		assert.equal(s.pendingCount, 1);
		assert.equal(s.processedCount, 0);
		assert.equal(s.outboxCount, 0);
		assert.equal(s.deadCount, 0);
		assert.deepEqual(s.keysHeld().sort(), ["k", "x"]);
	});
});

describe("Store.applyAll: published, requeue, prune", () => {
	it("published deletes results by uid and ignores uids not here", () => {
		const s = fresh();
		applyFrom(s, 1, {
			t: "commit",
			commit: {
				outbox: [
					{ uid: "u1", key: "k", body: "1" },
					{ uid: "u2", key: "k", body: "2" },
				],
			},
			at: 1,
		});
		applyFrom(s, 2, { t: "published", uids: ["u1", "elsewhere"] });
		assert.deepEqual(
			s.outbox(10).map((o) => o.uid),
			["u2"],
		);
	});

	it("requeue puts dead letters back with the stamps given and fresh attempts, skips ones not here, drops one processed since", () => {
		const s = fresh();
		applyFrom(s, 1, { t: "append", rows: [row("a", "k", 1), row("b", "k", 2), row("c", "k", 3)] });
		applyFrom(s, 2, { t: "commit", commit: { dead: ["a", "b"].map((id) => ({ id, reason: "r" })) }, at: 50 });
		// b came in again and was performed: its dead letter is history.
		applyFrom(s, 3, { t: "receive", shipment: { messages: [], actors: [], processed: [{ id: "b", key: "k", at: 60 }] } });
		const heard: string[] = [];
		s.onStored((rows) => heard.push(...rows.map((r) => r.id)));
		const [result] = applyFrom(s, 4, {
			t: "requeue",
			dead: [
				{ id: "a", diedAt: 50, stamp: 100 },
				{ id: "b", diedAt: 50, stamp: 101 },
				{ id: "a", diedAt: 49, stamp: 102 },
			],
		}) as { requeued: StoredMessage[]; dropped: number }[];
		assert.deepEqual(
			result.requeued.map((r) => [r.id, r.stamp, r.attempts]),
			[["a", 100, 0]],
		);
		assert.equal(result.dropped, 1);
		assert.equal(s.deadCount, 0);
		assert.deepEqual(
			s.messagesOf("k").map((r) => r.id),
			["c", "a"],
		);
		assert.equal(s.pendingCount, 2);
		assert.deepEqual(heard, ["a"]);
	});

	it("prune forgets processed ids remembered before the time given and returns how many", () => {
		const s = fresh();
		const processed = [10, 20, 30].map((at) => ({ id: `p${at}`, key: "k", at }));
		applyFrom(s, 1, { t: "receive", shipment: { messages: [], actors: [], processed } });
		assert.deepEqual(applyFrom(s, 2, { t: "prune", before: 20 }), [1]);
		assert.deepEqual(
			s.shipmentOf(["k"]).processed.map((p) => p.id),
			["p20", "p30"],
		);
		assert.deepEqual(applyFrom(s, 3, { t: "prune", before: 31 }), [2]);
		assert.equal(s.processedCount, 0);
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

describe("Store.applyAll: open, epoch, seal", () => {
	it("change nothing but the journal position, and each returns its own position", () => {
		const s = fresh();
		applyFrom(s, 1, { t: "append", rows: [row("a", "k", 1)] });
		const held = contents(s);
		const results = applyFrom(s, 2, { t: "open", node: "n1", at: 1 }, { t: "epoch" }, { t: "seal", by: "n2", at: 2 });
		assert.deepEqual(results, [2, 3, 4]);
		assert.equal(s.meta("journal"), "4");
		assert.deepEqual(contents(s), held);
		assert.equal(s.pendingCount, 1);
	});

	it("a group at older positions (a replay) never moves the journal position back", () => {
		const s = fresh();
		applyFrom(s, 10, { t: "epoch" });
		assert.deepEqual(applyFrom(s, 3, { t: "epoch" }), [3]);
		assert.equal(s.meta("journal"), "10");
	});

	it("records of a group stored at one position (one JetStream message) each return that position", () => {
		const s = fresh();
		const results = s.applyAll([
			{ record: { t: "epoch" }, seq: 5 },
			{ record: { t: "seal", by: "n2", at: 1 }, seq: 5 },
		]);
		assert.deepEqual(results, [5, 5]);
		assert.equal(s.meta("journal"), "5");
	});
});
