/**
 * Store.applyAll, record by record: what each journal record does to the store, and
 * that a group of records is all or nothing, in the file and in the store's memory.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import type { JournalRecord } from "../../lib/durable/records";
import { type Shipment, Store, type StoredMessage } from "../../lib/store/store";
import { applyFrom, contents, row } from "../support/records";

const stores: Store[] = [];
after(() => {
	for (const s of stores) s.close();
});

function fresh(): Store {
	const store = new Store(":memory:");
	stores.push(store);
	return store;
}

function shipped(id: string, key: string, stamp: number, extra: Partial<Shipment["messages"][number]> = {}): Shipment["messages"][number] {
	return { id, key, stamp, payload: `p-${id}`, headers: null, receivedAt: 1000, attempts: 0, ...extra };
}

/** A record no store can apply: a row without payload breaks a NOT NULL constraint. */
const BROKEN: JournalRecord = { t: "append", rows: [{ id: "broken", key: "k", stamp: 1, payload: undefined as unknown as string }] };

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
