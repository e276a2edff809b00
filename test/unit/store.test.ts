import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { ActorRuntime } from "../../lib/actors/runtime";
import { DurableStore } from "../../lib/durable/durable-store";
import { Stamps } from "../../lib/durable/stamps";
import { Ring } from "../../lib/ring";
import { AppendError, validateAppend } from "../../lib/store/append";
import { STAMPS_PER_EPOCH, Store, type StoredMessage } from "../../lib/store/store";
import { configDefaults, settle } from "../support/actors";
import { fillDisk, onFile, tempDir } from "../support/tmp";
import { waitFor } from "../support/wait";

const tmp = tempDir("keyhive-store-");
after(() => tmp.cleanup());

let n = 0;
/** A fresh store in the temp dir. */
function fresh(options?: ConstructorParameters<typeof Store>[1]): Store {
	return tmp.store(`s${++n}`, options);
}

function msg(id: string, key: string, payload = `p-${id}`) {
	return { id, key, payload };
}

const FAIL_BOOM = `CREATE TRIGGER IF NOT EXISTS fail_boom BEFORE INSERT ON outbox WHEN NEW.body = '"boom"'
	BEGIN SELECT RAISE(ABORT, 'injected failure'); END;`;

describe("Store.append", () => {
	it("stores a batch in one transaction, stamps rising in append order, per-key order by stamp", () => {
		const s = fresh();
		const seen: StoredMessage[][] = [];
		s.onStored((rows) => seen.push(rows));
		const { stored, duplicates } = s.append([msg("a", "k1"), msg("b", "k2"), msg("c", "k1"), msg("d", "k1"), msg("e", "k2")]);
		assert.equal(duplicates, 0);
		assert.deepEqual(
			stored.map((r) => r.id),
			["a", "b", "c", "d", "e"],
		);
		for (let i = 1; i < stored.length; i++) {
			assert.ok(stored[i].stamp > stored[i - 1].stamp, "stamps rise in append order");
			assert.ok(stored[i].seq > stored[i - 1].seq, "seqs rise in append order");
		}
		assert.equal(seen.length, 1, "one listener call for one append");
		assert.deepEqual(
			seen[0].map((r) => r.id),
			["a", "b", "c", "d", "e"],
		);
		s.append([msg("f", "k1")]);
		assert.deepEqual(
			s.messagesOf("k1").map((r) => r.id),
			["a", "c", "d", "f"],
		);
		assert.deepEqual(
			s.messagesOf("k2").map((r) => r.id),
			["b", "e"],
		);
		assert.deepEqual(
			s.scan(0, 100).map((r) => r.id),
			["a", "b", "c", "d", "e", "f"],
		);
		assert.deepEqual(
			s.scan(stored[2].seq, 2).map((r) => r.id),
			["d", "e"],
		);
		assert.equal(s.pendingCount, 6);
	});

	it("keeps payload, headers, receivedAt and attempts as given", () => {
		const s = fresh();
		const [row] = s.append([{ id: "h", key: "k", payload: '{"x":1}', headers: { a: "b", n: 2, t: true }, receivedAt: 1234, attempts: 2 }]).stored;
		assert.deepEqual(row.headers, { a: "b", n: 2, t: true });
		const [read] = s.messagesOf("k");
		assert.deepEqual(read, row);
		assert.equal(read.payload, '{"x":1}');
		assert.equal(read.receivedAt, 1234);
		assert.equal(read.attempts, 2);
		const [plain] = s.append([msg("p", "k")]).stored;
		assert.equal(plain.headers, null);
		assert.equal(plain.attempts, 0);
		assert.ok(Math.abs(plain.receivedAt - Date.now()) < 5000);
	});

	it("an append that fails midway stores nothing", () => {
		const s = fresh();
		onFile(s.file, `CREATE TRIGGER fail_bad BEFORE INSERT ON messages WHEN NEW.id = 'bad' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;`);
		s.append([msg("before", "k")]);
		const heard: string[] = [];
		s.onStored((rows) => heard.push(...rows.map((r) => r.id)));
		assert.throws(() => s.append([msg("ok", "k"), msg("bad", "k"), msg("after", "k")]), /injected failure/);
		assert.deepEqual(
			s.scan(0, 10).map((r) => r.id),
			["before"],
		);
		assert.equal(s.pendingCount, 1);
		assert.deepEqual(heard, [], "listeners hear nothing of a rolled-back append");
		assert.equal(s.append([msg("ok", "k")]).duplicates, 0, "ok was not kept");
	});

	it("a message without payload or key is an error, not a silently dropped duplicate", () => {
		const s = fresh();
		assert.throws(() => s.append([{ id: "a", key: "k", payload: undefined as unknown as string }]));
		assert.throws(() => s.append([{ id: "b", key: null as unknown as string, payload: "x" }]));
	});

	it("dedupes: an id already pending, repeated in the batch, or already processed is a duplicate", () => {
		const s = fresh();
		const calls: string[][] = [];
		s.onStored((rows) => calls.push(rows.map((r) => r.id)));
		assert.equal(s.append([msg("m1", "k")]).duplicates, 0);
		const again = s.append([msg("m1", "k", "other payload"), msg("m2", "k"), msg("m2", "k")]);
		assert.equal(again.duplicates, 2);
		assert.deepEqual(
			again.stored.map((r) => r.id),
			["m2"],
		);
		assert.equal(s.messagesOf("k")[0].payload, "p-m1", "the first copy is kept");
		const [m1] = s.messagesOf("k");
		s.commit({ done: [{ id: m1.id, key: m1.key }] });
		const redelivered = s.append([msg("m1", "k")]);
		assert.equal(redelivered.duplicates, 1, "processed id is dropped");
		assert.deepEqual(redelivered.stored, []);
		assert.deepEqual(
			s.messagesOf("k").map((r) => r.id),
			["m2"],
		);
		assert.deepEqual(calls, [["m1"], ["m2"]], "listeners hear only about rows actually stored");
		assert.equal(s.pendingCount, 1);
	});
});

describe("Store.commit", () => {
	it("deletes done rows, remembers their ids, writes actors (versioned by the commit's position) and outbox together", () => {
		const s = fresh();
		const [a, b, c] = s.append([msg("a", "k"), msg("b", "k"), msg("c", "j")]).stored;
		s.commit(
			{
				done: [a, b].map((r) => ({ id: r.id, key: r.key })),
				actors: [{ id: "k", payload: { count: 2 }, timeout: 50, deleted: false }],
				outbox: [
					{ key: "k", body: '"result"', headers: { key: "k" } },
					{ key: "k", body: "2" },
				],
			},
			7,
		);
		assert.deepEqual(
			s.scan(0, 10).map((r) => r.id),
			["c"],
		);
		assert.equal(s.pendingCount, 1);
		assert.equal(s.processedCount, 2);
		assert.deepEqual(s.actor("k"), { id: "k", payload: { count: 2 }, timeout: 50, deleted: false, version: 7 });
		assert.equal(s.outboxCount, 2);
		const outbox = s.outbox(10);
		assert.deepEqual(
			outbox.map((o) => [o.body, o.headers]),
			[
				['"result"', { key: "k" }],
				["2", null],
			],
		);
		assert.ok(outbox[0].seq < outbox[1].seq);
		assert.notEqual(outbox[0].uid, outbox[1].uid, "every result has a uid of its own");
		s.published([outbox[0].uid]);
		assert.deepEqual(
			s.outbox(10).map((o) => o.body),
			["2"],
		);
		assert.equal(s.outboxCount, 1);
		assert.equal(s.messagesOf("j")[0].id, c.id);
	});

	it("is all or nothing: a failure in its last statement undoes the delete, the remembered id and the actor record", () => {
		const s = fresh();
		onFile(s.file, FAIL_BOOM);
		const [a] = s.append([msg("a", "k")]).stored;
		assert.throws(
			() =>
				s.commit({
					done: [{ id: a.id, key: a.key }],
					actors: [{ id: "k", payload: 1, timeout: 0, deleted: false }],
					outbox: [
						{ key: "k", body: '"fine"' },
						{ key: "k", body: '"boom"' },
					],
				}),
			/injected failure/,
		);
		assert.deepEqual(
			s.messagesOf("k").map((r) => r.id),
			["a"],
			"the row is still pending",
		);
		assert.equal(s.processedCount, 0, "its id is not remembered");
		assert.equal(s.actor("k"), undefined, "no actor record");
		assert.equal(s.outboxCount, 0, "no outbox entry, not even the one before the failure");
		assert.equal(s.append([msg("a", "k")]).duplicates, 1, "still pending, so a redelivery is a duplicate");
	});

	it("pendingCount stays right when a commit rolls back", () => {
		const s = fresh();
		onFile(s.file, FAIL_BOOM);
		const [a] = s.append([msg("a", "k")]).stored;
		assert.throws(() => s.commit({ done: [{ id: a.id, key: a.key }], outbox: [{ key: "k", body: '"boom"' }] }));
		assert.equal(s.scan(0, 10).length, 1);
		assert.equal(s.pendingCount, 1, "pendingCount drifted away from the rows in the table");
	});

	it("failed bumps attempts; dead moves rows to the dead table with reason and attempts", () => {
		const s = fresh();
		const [a, b, c] = s.append([msg("a", "k"), { ...msg("b", "k"), headers: { h: 1 } }, msg("c", "k")]).stored;
		s.commit({ failed: [a.id, b.id] });
		s.commit({ failed: [b.id] });
		assert.deepEqual(
			s.messagesOf("k").map((r) => [r.id, r.attempts]),
			[
				["a", 1],
				["b", 2],
				["c", 0],
			],
		);
		assert.equal(s.pendingCount, 3);
		const before = Date.now();
		s.commit({ dead: [{ id: b.id, reason: "boom: it broke" }] });
		assert.deepEqual(
			s.messagesOf("k").map((r) => r.id),
			["a", "c"],
		);
		assert.equal(s.pendingCount, 2);
		assert.equal(s.deadCount, 1);
		const [dead] = s.dead(10);
		assert.equal(dead.id, "b");
		assert.equal(dead.key, "k");
		assert.equal(dead.payload, "p-b");
		assert.deepEqual(dead.headers, { h: 1 });
		assert.equal(dead.stamp, b.stamp);
		assert.equal(dead.reason, "boom: it broke");
		assert.equal(dead.attempts, 3, "the final failed attempt is counted");
		assert.ok(dead.diedAt >= before && dead.diedAt <= Date.now());
		assert.equal(s.processedCount, 0, "a dead row is not processed");
		void c;
	});

	it("DurableStore.requeueDead moves dead letters back to pending, last in order, with fresh attempts", async () => {
		const s = fresh();
		const d = DurableStore.local(s);
		const [a, b] = (await d.append([msg("a", "k"), { ...msg("b", "k"), headers: { x: "y" } }])).stored;
		await d.commit({ failed: [a.id] });
		await d.commit({ dead: [{ id: a.id, reason: "r1" }] });
		const [c] = (await d.append([msg("c", "k")])).stored;
		await d.commit({ dead: [{ id: b.id, reason: "r2" }] });
		const heard: string[] = [];
		s.onStored((rows) => heard.push(...rows.map((r) => r.id)));
		const { requeued } = await d.requeueDead(1);
		assert.deepEqual(
			requeued.map((r) => r.id),
			["a"],
			"limit is honoured, oldest dead first",
		);
		assert.equal(requeued[0].attempts, 0);
		assert.ok(requeued[0].stamp > c.stamp, "a requeued row goes after the rows pending now");
		assert.deepEqual(heard, ["a"]);
		assert.equal(s.deadCount, 1);
		const { requeued: again } = await d.requeueDead(10);
		assert.deepEqual(
			again.map((r) => r.id),
			["b"],
		);
		assert.deepEqual(again[0].headers, { x: "y" });
		assert.equal(again[0].payload, "p-b");
		assert.equal(s.deadCount, 0);
		assert.deepEqual(
			s.messagesOf("k").map((r) => r.id),
			["c", "a", "b"],
		);
		assert.equal(s.pendingCount, 3);
		assert.deepEqual(await d.requeueDead(10), { requeued: [], dropped: 0 });
	});
});

describe("Store across a restart", () => {
	it("keeps pending rows, processed ids, actor records, outbox and dead letters, and stamps go on above the ones given before", async () => {
		const file = tmp.file("restart-1.sqlite");
		const s1 = new Store(file, { synchronous: "NORMAL" });
		const d1 = DurableStore.local(s1);
		const [a, b, c, d] = (await d1.append([msg("a", "k"), msg("b", "k"), msg("c", "j"), { ...msg("d", "j"), headers: { h: "v" } }])).stored;
		await d1.commit({
			done: [{ id: a.id, key: a.key }],
			actors: [
				{ id: "k", payload: { n: 1 }, timeout: 100, deleted: false },
				{ id: "gone", payload: null, timeout: 0, deleted: true },
			],
			outbox: [{ key: "k", body: '"out"', headers: { key: "k" } }],
			failed: [c.id],
		});
		await d1.commit({ dead: [{ id: b.id, reason: "nope" }] });
		const lastStamp = Math.max(a.stamp, b.stamp, c.stamp, d.stamp);
		const records = [...s1.actors()];
		const journal = s1.meta("journal");
		s1.close();

		const s2 = new Store(file, { synchronous: "NORMAL" });
		try {
			assert.equal(s2.pendingCount, 2);
			assert.deepEqual(
				s2.scan(0, 10).map((r) => [r.id, r.attempts, r.stamp]),
				[
					["c", 1, c.stamp],
					["d", 0, d.stamp],
				],
			);
			assert.deepEqual(s2.messagesOf("j")[1].headers, { h: "v" });
			assert.equal(s2.processedCount, 1);
			assert.equal(s2.append([msg("a", "k")]).duplicates, 1, "processed id survives the restart");
			assert.deepEqual(s2.actor("k"), { ...records.find((r) => r.id === "k"), payload: { n: 1 }, timeout: 100, deleted: false });
			assert.deepEqual(s2.actor("gone"), { ...records.find((r) => r.id === "gone"), payload: null, timeout: 0, deleted: true });
			assert.ok(s2.actor("k")!.version! > 0, "the record keeps the journal position of its commit");
			assert.equal(s2.actorRecordCount, 2);
			assert.deepEqual([...s2.actors()].map((r) => r.id).sort(), ["gone", "k"]);
			assert.equal(s2.meta("journal"), journal, "the journal position survives the restart");
			assert.deepEqual(
				s2.outbox(10).map((o) => [o.body, o.headers]),
				[['"out"', { key: "k" }]],
			);
			assert.deepEqual(
				s2.dead(10).map((r) => [r.id, r.reason]),
				[["b", "nope"]],
			);
			const [e] = (await DurableStore.local(s2).append([msg("e", "j")])).stored;
			assert.ok(e.stamp > lastStamp, `stamp ${e.stamp} after the restart is not above ${lastStamp} given before it`);
			assert.ok(Stamps.epochOf(e.stamp) > Stamps.epochOf(lastStamp), "a new epoch after the restart");
			assert.deepEqual(
				s2.messagesOf("j").map((r) => r.id),
				["c", "d", "e"],
			);
		} finally {
			s2.close();
		}
	});

	it("stamps are strictly increasing within one store, across a new epoch when one runs out", async () => {
		const d = DurableStore.local(fresh());
		let next = 0;
		for (let i = 0; i < 1000; i++) {
			const count = 1 + (i % 3);
			const first = await d.stamps.range(count);
			assert.ok(first >= next, `range ${first} overlaps the one before (next free ${next})`);
			next = first + count;
		}
		const epoch = d.stamps.current;
		const left = (epoch + 1) * STAMPS_PER_EPOCH - next;
		assert.equal(await d.stamps.range(left), next, "the rest of the epoch");
		const after = await d.stamps.range(1);
		assert.ok(after >= next + left, "a stamp after a full epoch is above every stamp of it");
		assert.ok(Stamps.epochOf(after) > epoch, "in a new epoch");
		const [row] = (await d.append([msg("a", "k")])).stored;
		assert.ok(row.stamp > after, "appended rows are stamped from the same sequence");
	});

	it("stamps stay above every stamp given before a restart even when those rows are gone", async () => {
		const file = tmp.file("restart-2.sqlite");
		const s1 = new Store(file, { synchronous: "NORMAL" });
		const d1 = DurableStore.local(s1);
		// Stamps run ahead of the rows: a big ingest batch takes many, and performs delete them.
		await d1.stamps.range(300_000);
		const [a] = (await d1.append([msg("a", "k")])).stored;
		await d1.commit({ done: [{ id: a.id, key: a.key }] });
		assert.equal(s1.pendingCount, 0);
		s1.close();
		const s2 = new Store(file, { synchronous: "NORMAL" });
		try {
			assert.equal(s2.newestStamp, a.stamp, "the newest stamp is kept apart from the rows");
			const [plain] = s2.append([msg("b", "k")]).stored;
			assert.ok(plain.stamp > a.stamp, `a row appended without a stamp got ${plain.stamp}, not above ${a.stamp}`);
			const [stamped] = (await DurableStore.local(s2).append([msg("c", "k")])).stored;
			assert.ok(stamped.stamp > plain.stamp, `stamp ${stamped.stamp} after the restart is not above ${plain.stamp}`);
		} finally {
			s2.close();
		}
	});

	it("refuses a file with another schema version, naming the file", () => {
		const file = tmp.file("old-schema.sqlite");
		new Store(file).close();
		onFile(file, "UPDATE meta SET value = '999' WHERE name = 'schema'");
		assert.throws(
			() => new Store(file),
			(err: Error) => err.message.includes(file) && /999/.test(err.message),
		);
	});
});

describe("Store shipments", () => {
	it("shipmentOf / receive / forget move messages, actor records and processed ids between two stores", () => {
		const from = fresh();
		const to = fresh();
		const rows = from.append([msg("a", "k"), msg("b", "j"), msg("c", "k"), msg("x", "stay"), msg("done-1", "k")]).stored;
		const done = rows.find((r) => r.id === "done-1")!;
		from.commit(
			{
				done: [{ id: done.id, key: done.key }],
				actors: [
					{ id: "k", payload: { v: 7 }, timeout: 20, deleted: false },
					{ id: "j", payload: null, timeout: 0, deleted: true },
				],
			},
			3,
		);
		from.commit({ failed: [rows[2].id] });

		const shipment = from.shipmentOf(["k", "j", "nothing-here"]);
		assert.deepEqual(
			shipment.messages.map((m) => m.id),
			["b", "a", "c"],
			"grouped by key, oldest first per key",
		);
		assert.ok(!("seq" in shipment.messages[0]), "seq is local and does not travel");
		assert.deepEqual(shipment.actors.map((a) => a.id).sort(), ["j", "k"]);
		assert.deepEqual(
			shipment.processed.map((p) => [p.id, p.key]),
			[["done-1", "k"]],
		);

		const heard: string[] = [];
		to.onStored((r) => heard.push(...r.map((m) => m.id)));
		const received = to.receive(shipment);
		assert.equal(received.duplicates, 0);
		assert.deepEqual(heard.sort(), ["a", "b", "c"]);
		for (const original of rows.filter((r) => ["a", "b", "c"].includes(r.id))) {
			const [copy] = to.messagesOf(original.key).filter((m) => m.id === original.id);
			assert.equal(copy.stamp, original.stamp, `${original.id} keeps its stamp`);
			assert.equal(copy.receivedAt, original.receivedAt);
			assert.equal(copy.payload, original.payload);
		}
		assert.equal(to.messagesOf("k").find((m) => m.id === "c")!.attempts, 1, "attempts travel");
		assert.deepEqual(to.actor("k"), { id: "k", payload: { v: 7 }, timeout: 20, deleted: false, version: 3 });
		assert.equal(to.actor("j")!.deleted, true);
		assert.equal(to.append([msg("done-1", "k")]).duplicates, 1, "the processed id moved with the key");
		assert.equal(to.pendingCount, 3);

		from.forget(Store.forgottenOf(shipment));
		assert.deepEqual(
			from.scan(0, 10).map((r) => r.id),
			["x"],
		);
		assert.equal(from.pendingCount, 1);
		assert.equal(from.actor("k"), undefined);
		assert.equal(from.actor("j"), undefined);
		assert.equal(from.processedCount, 0);
		assert.deepEqual(from.keysHeld(), ["stay"]);
	});

	it("the receiver drops ids it already processed or already holds", () => {
		const from = fresh();
		const to = fresh();
		const [seen] = to.append([msg("seen", "k")]).stored;
		to.commit({ done: [{ id: seen.id, key: seen.key }] });
		to.append([msg("pending-here", "k")]);
		from.append([msg("seen", "k"), msg("pending-here", "k"), msg("new", "k")]);
		const received = to.receive(from.shipmentOf(["k"]));
		assert.equal(received.duplicates, 2);
		assert.deepEqual(
			received.stored.map((r) => r.id),
			["new"],
		);
		assert.deepEqual(
			to
				.messagesOf("k")
				.map((r) => r.id)
				.sort(),
			["new", "pending-here"],
		);
	});

	it("a message whose id comes in the same shipment's processed list is not stored", () => {
		const to = fresh();
		const now = Date.now();
		const received = to.receive({
			messages: [{ id: "m", key: "k", stamp: 5, payload: "p", headers: null, receivedAt: now, attempts: 0 }],
			actors: [],
			processed: [{ id: "m", key: "k", at: now }],
		});
		assert.equal(received.duplicates, 1);
		assert.equal(to.pendingCount, 0);
	});

	it("received rows are ordered by their stamps among the rows already here", () => {
		const to = fresh();
		const [local] = to.append([{ ...msg("local", "k"), stamp: 100 }]).stored;
		to.receive({
			messages: [{ id: "older", key: "k", stamp: local.stamp - 10, payload: "p", headers: null, receivedAt: 1, attempts: 0 }],
			actors: [],
			processed: [],
		});
		assert.deepEqual(
			to.messagesOf("k").map((r) => r.id),
			["older", "local"],
		);
	});

	it("shipmentOf handles more keys than one query takes", () => {
		const s = fresh();
		const keys = Array.from({ length: 1234 }, (_, i) => `key_${i}`);
		s.append(keys.map((k) => msg(`m-${k}`, k)));
		const shipment = s.shipmentOf(keys);
		assert.equal(shipment.messages.length, keys.length);
		assert.equal(new Set(shipment.messages.map((m) => m.key)).size, keys.length);
	});

	it("keysHeld is the union of messages, actor records, processed ids, results and dead letters", () => {
		const s = fresh();
		const [m] = s.append([msg("m1", "only-processed"), msg("m2", "pending"), msg("m3", "both")]).stored;
		s.commit({
			done: [{ id: m.id, key: m.key }],
			actors: [
				{ id: "only-actor", payload: 1, timeout: 0, deleted: false },
				{ id: "both", payload: 1, timeout: 0, deleted: false },
			],
		});
		assert.deepEqual(s.keysHeld().sort(), ["both", "only-actor", "only-processed", "pending"]);
		const [d] = s.messagesOf("pending");
		s.commit({ dead: [{ id: d.id, reason: "x" }] });
		s.commit({ outbox: [{ key: "only-result", body: "1" }] });
		assert.deepEqual(s.keysHeld().sort(), ["both", "only-actor", "only-processed", "only-result", "pending"], "dead letters and results move with their key");
	});

	it("results and dead letters move with their key, and a shipment received twice stores them once", async () => {
		const from = fresh();
		const to = fresh();
		const [a, b] = from.append([msg("a", "k"), msg("b", "k"), msg("c", "stay")]).stored;
		from.commit({
			done: [{ id: a.id, key: a.key }],
			outbox: [
				{ key: "k", body: '"r1"', headers: { h: 1 } },
				{ key: "k", body: '"r2"' },
				{ key: "stay", body: '"r3"' },
			],
		});
		from.commit({ dead: [{ id: b.id, reason: "broke" }] });
		let nudged = 0;
		to.onOutbox(() => nudged++);
		const shipment = from.shipmentOf(["k"]);
		assert.deepEqual(
			shipment.outbox.map((o) => [o.key, o.body, o.headers]),
			[
				["k", '"r1"', { h: 1 }],
				["k", '"r2"', null],
			],
		);
		assert.deepEqual(
			shipment.dead.map((d) => [d.id, d.key, d.reason, d.attempts]),
			[["b", "k", "broke", 1]],
		);
		to.receive(shipment);
		to.receive(shipment);
		assert.equal(nudged, 1, "the relay hears of received results once, not of a repeat");
		assert.deepEqual(
			to.outbox(10).map((o) => [o.key, o.body]),
			[
				["k", '"r1"'],
				["k", '"r2"'],
			],
		);
		assert.deepEqual(
			to.dead(10).map((d) => [d.id, d.reason]),
			[["b", "broke"]],
		);
		from.forget(Store.forgottenOf(shipment));
		assert.deepEqual(
			from.outbox(10).map((o) => o.body),
			['"r3"'],
		);
		assert.equal(from.deadCount, 0);
		assert.deepEqual(
			(await DurableStore.local(to).requeueDead(10)).requeued.map((r) => r.id),
			["b"],
			"the owner can requeue a dead letter it took",
		);
	});

	it("a result is taken by the relay or by a shipment, never by both", async () => {
		const s = fresh();
		const d = DurableStore.local(s);
		s.commit({ outbox: ["1", "2", "3", "4"].map((body) => ({ key: body === "4" ? "j" : "k", body })) });
		const settled: number[] = [];
		s.onOutboxSettled(() => settled.push(s.outboxCount));
		const [first] = s.takeOutbox(1);
		assert.equal(first.body, "1");
		assert.equal(s.resultsInFlight("k"), true);
		assert.equal(s.resultsInFlight("j"), false);
		const shipment = s.shipmentOf(["k", "j"]);
		assert.deepEqual(
			shipment.outbox.map((o) => o.body),
			["2", "3", "4"],
			"the result in flight stays out",
		);
		assert.deepEqual(s.takeOutbox(10), [], "results in a shipment are not published");
		assert.deepEqual(s.shipmentOf(["k"]).outbox, [], "nor shipped twice");
		s.release({ ...shipment, outbox: shipment.outbox.slice(1) });
		s.forget(Store.forgottenOf({ ...shipment, outbox: shipment.outbox.slice(0, 1) }));
		assert.deepEqual(
			s.takeOutbox(10).map((o) => o.body),
			["3", "4"],
			"a shipment that did not go gives its results back to the relay",
		);
		s.giveBack([first.seq]);
		assert.deepEqual(
			s.takeOutbox(10).map((o) => o.body),
			["1"],
			"a result given back by the relay is taken again",
		);
		await d.published([first]);
		assert.equal(s.resultsInFlight("k"), true, "3 is still in flight");
		assert.deepEqual(settled, [3, 2]);
	});
});

describe("a full disk (SQLITE_FULL from a capped page count)", () => {
	it("an append or a received shipment that finds no room stores nothing and leaves the counts as they were", () => {
		const s = fresh();
		s.append([{ ...msg("a", "k"), stamp: 10 }]);
		const restore = fillDisk(s);
		const big = (id: string) => msg(id, "k", "x".repeat(20_000));
		assert.throws(
			() => s.append([big("b")]),
			(err: Error & { code?: string }) => err.code === "SQLITE_FULL",
		);
		const shipment = { messages: [{ ...big("c"), stamp: 5, headers: null, receivedAt: 1, attempts: 0 }], actors: [], processed: [] };
		assert.throws(
			() => s.receive(shipment),
			(err: Error & { code?: string }) => err.code === "SQLITE_FULL",
		);
		assert.equal(s.pendingCount, 1);
		assert.deepEqual(
			s.scan(0, 10).map((r) => r.id),
			["a"],
		);
		restore();
		s.append([big("b")]);
		s.receive(shipment);
		assert.deepEqual(
			s.messagesOf("k").map((r) => r.id),
			["c", "a", "b"],
			"in stamp order once there is room",
		);
	});

	it("a perform whose commit finds no room keeps its rows pending and in its mailbox, counts no attempt, dead-letters nothing, and they are performed in order once there is room", async () => {
		const s = fresh();
		const performed: string[][] = [];
		const attempts: number[] = [];
		const ring = Ring.of(["n1"]);
		const view = { id: ring.id, ring, members: ring.members };
		const errors: string[] = [];
		const rt = new ActorRuntime({
			durable: DurableStore.local(s),
			self: "n1",
			behaviour: {
				spawn: () => ({ payload: 0 }),
				perform(_id, count, messages, ctx) {
					performed.push(messages.map((m) => m.id));
					attempts.push(ctx.attempt);
					ctx.publish({ ids: messages.map((m) => m.id), pad: "x".repeat(20_000) });
					return { replace: (count as number) + messages.length };
				},
			},
			...configDefaults(),
			maxAttempts: 3,
			retryBaseMs: 10,
			defaultInterval: 0,
			tickMs: 5,
			logger: { info: () => undefined, warn: () => undefined, error: (line) => errors.push(line) },
		});
		try {
			await settle(rt, view);
			const restore = fillDisk(s);
			s.append(["m1", "m2", "m3"].map((id) => msg(id, "k")));
			// As many tries as maxAttempts: before the fix the third one dead-lettered the rows.
			await waitFor(() => performed.length >= 3 || s.deadCount > 0, { timeoutMs: 10_000, message: "performs retried while the disk is full" });
			assert.equal(s.deadCount, 0, "nothing dead-lettered because the disk was full");
			assert.deepEqual(
				s.messagesOf("k").map((r) => r.id),
				["m1", "m2", "m3"],
				"nothing deleted while the disk is full",
			);
			assert.deepEqual(
				s.messagesOf("k").map((r) => r.attempts),
				[0, 0, 0],
				"a commit that found no room is no attempt",
			);
			assert.deepEqual(new Set(attempts), new Set([1]), "every perform is the first attempt");
			assert.equal(s.outboxCount, 0);
			assert.equal(rt.stats().dead, 0);
			assert.equal(rt.stats().failures, 0);
			assert.equal(s.actor("k"), undefined, "no actor record written");
			assert.equal(rt.get("k")!.payload, 0, "the actor's state is unchanged");
			assert.equal(errors.length, 1, `one line says the disk is full: ${errors.join(" | ")}`);
			assert.match(errors[0], /disk full/);
			s.append([msg("m4", "k")]);
			restore();
			await waitFor(() => s.scan(0, 1).length === 0, { message: "every row performed once there is room" });
			assert.deepEqual(
				s.outbox(10).flatMap((o) => (JSON.parse(o.body) as { ids: string[] }).ids),
				["m1", "m2", "m3", "m4"],
				"results committed in order, each once",
			);
			assert.equal(s.actor("k")!.payload, 4, "every message counted once");
		} finally {
			await rt.stop();
		}
	});
});

describe("DurableStore.pruneProcessed", () => {
	it("forgets processed ids older than the dedupe window, keeps younger ones", async () => {
		const s = fresh({ dedupeWindowMs: 10_000 });
		const d = DurableStore.local(s);
		const now = Date.now();
		s.receive({
			messages: [],
			actors: [],
			processed: [
				{ id: "old", key: "k", at: now - 20_000 },
				{ id: "edge", key: "k", at: now - 10_000 },
				{ id: "young", key: "k", at: now - 1000 },
			],
		});
		assert.equal(await d.pruneProcessed(now), 1);
		assert.equal(s.processedCount, 2);
		assert.equal(s.append([msg("old", "k")]).duplicates, 0, "a pruned id is accepted again");
		assert.equal(s.append([msg("young", "k")]).duplicates, 1);
		assert.equal(await d.pruneProcessed(now + 1), 1, "edge is now older than the window");
		assert.equal(await d.pruneProcessed(now + 9000), 0, "young is exactly at the window's edge");
		assert.equal(await d.pruneProcessed(now + 9001), 1);
		assert.equal(s.processedCount, 0);
	});

	it("ids committed now survive a prune now", async () => {
		const s = fresh({ dedupeWindowMs: 1000 });
		const d = DurableStore.local(s);
		const [a] = (await d.append([msg("a", "k")])).stored;
		await d.commit({ done: [{ id: a.id, key: a.key }] });
		assert.equal(await d.pruneProcessed(), 0);
		assert.equal(await d.pruneProcessed(Date.now() + 5000), 1);
	});
});

describe("validateAppend", () => {
	it("accepts one message or a list, fills ids, turns payloads into text", () => {
		const [one] = validateAppend({ key: "k", payload: { a: 1 } });
		assert.equal(one.key, "k");
		assert.equal(one.payload, '{"a":1}');
		assert.equal(one.headers, null);
		assert.match(one.id, /^[0-9a-f-]{36}$/);
		const list = validateAppend({ messages: [{ key: "a", payload: "text", id: "m1", headers: { h: 1 } }, { key: "b" }] });
		assert.deepEqual(list[0], { id: "m1", key: "a", payload: "text", headers: { h: 1 } });
		assert.equal(list[1].payload, "null");
		assert.notEqual(validateAppend({ key: "k" })[0].id, validateAppend({ key: "k" })[0].id);
	});

	it("gives clear errors for a missing key, a bad id, bad headers, naming the message", () => {
		const bad = (params: unknown, pattern: RegExp) =>
			assert.throws(
				() => validateAppend(params as Parameters<typeof validateAppend>[0]),
				(err: Error) => err instanceof AppendError && pattern.test(err.message),
			);
		bad({ payload: 1 }, /message 0: key must be a non-empty string/);
		bad({ key: "" }, /key must be a non-empty string/);
		bad({ key: 5 }, /key must be a non-empty string/);
		bad({ messages: [{ key: "ok" }, { payload: "no key" }] }, /message 1: key/);
		bad({ key: "k", id: "" }, /id must be a non-empty string/);
		bad({ key: "k", id: 42 }, /id must be a non-empty string/);
		bad({ key: "k", headers: "h=1" }, /headers must be an object/);
		bad({ key: "k", headers: ["a"] }, /headers must be an object/);
		bad({ key: "k", headers: null }, /headers must be an object/);
		bad({ messages: "nope" }, /messages must be an array/);
		bad({ messages: [null] }, /message 0: expected an object/);
	});

	it("what it returns appends cleanly", () => {
		const s = fresh();
		const { stored } = s.append(
			validateAppend({
				messages: [
					{ key: "k", payload: "x", id: "i1" },
					{ key: "k", payload: [1, 2] },
				],
			}),
		);
		assert.deepEqual(
			stored.map((r) => r.payload),
			["x", "[1,2]"],
		);
	});
});

describe("seq numbers", () => {
	it("are never reused after a table empties (the relay and the worker remember seqs)", () => {
		const tmp = tempDir("seq-");
		const store = tmp.store();
		try {
			const [first] = store.append([{ id: "a", key: "k", payload: "x" }]).stored;
			store.commit({ done: [{ id: "a", key: "k" }], outbox: [{ key: "k", body: "1" }] });
			const [entry] = store.outbox(10);
			store.published([entry.uid]);
			const [second] = store.append([{ id: "b", key: "k", payload: "x" }]).stored;
			store.commit({ done: [{ id: "b", key: "k" }], outbox: [{ key: "k", body: "2" }] });
			assert.ok(second.seq > first.seq, "message seq reused");
			assert.deepEqual(
				store.outbox(10, entry.seq).map((e) => e.body),
				["2"],
				"outbox seq reused",
			);
		} finally {
			tmp.cleanup();
		}
	});
});
