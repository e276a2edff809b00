import Database = require("better-sqlite3");
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { DurableStore } from "../../lib/durable/durable-store";
import { Shipper } from "../../lib/store/shipper";
import { split } from "../../lib/store/split";
import type { Shipment, Store } from "../../lib/store/store";
import { viewOf, type View } from "../../lib/topology/topology";
import { tempDir } from "../support/tmp";
import { deferred, isSettled, sleep, waitFor, type Deferred } from "../support/wait";

const tmp = tempDir("keyhive-shipper-");
const shippers: Shipper[] = [];
after(() => {
	for (const s of shippers) s.stop();
	tmp.cleanup();
});

const AB = viewOf(["a", "b"]);
const ALL_KEYS = Array.from({ length: 400 }, (_, i) => `key_${i + 1}`);
const B_KEYS = ALL_KEYS.filter((k) => AB.ring.ownerOf(k) === "b");
const A_KEYS = ALL_KEYS.filter((k) => AB.ring.ownerOf(k) === "a");

let pairs = 0;

interface Pair {
	a: Store;
	b: Store;
	/** a's and b's local journals: what the shipper forgets through, and what b receives through (as lib/node.ts does). */
	da: DurableStore;
	db: DurableStore;
	shipper: Shipper;
	calls: { node: string; viewId: string; rows: number; actors: number; processed: number }[];
	held: Set<string>;
	/** ship fails this many more calls (a transient error), then works. */
	failNext: number;
	/** ship refuses (the receiver does not own the keys) while true. */
	refusing: boolean;
	/** When set, ship waits on it before delivering. */
	gate: Deferred | null;
	/** Calls (1-based) that fail with a transient error. */
	failCalls: Set<number>;
}

function pair(options: { batchRows?: number; batchBytes?: number } = {}): Pair {
	const id = ++pairs;
	const a = tmp.store(`a${id}`);
	const b = tmp.store(`b${id}`);
	const p: Pair = {
		a,
		b,
		da: DurableStore.local(a),
		db: DurableStore.local(b),
		calls: [],
		held: new Set(),
		failNext: 0,
		refusing: false,
		gate: null,
		failCalls: new Set(),
		shipper: null as unknown as Shipper,
	};
	p.shipper = new Shipper({
		durable: p.da,
		self: "a",
		batchRows: options.batchRows ?? 2000,
		batchBytes: options.batchBytes,
		isHeld: (key) => p.held.has(key),
		async ship(node: string, viewId: string, shipment: Shipment) {
			p.calls.push({ node, viewId, rows: shipment.messages.length, actors: shipment.actors.length, processed: shipment.processed.length });
			if (p.gate) await p.gate.promise;
			if (p.failCalls.has(p.calls.length)) throw new Error("connection lost");
			if (p.failNext > 0) {
				p.failNext--;
				throw new Error("transient network error");
			}
			if (p.refusing) throw new Error(`b does not own ${shipment.messages[0]?.key} in its view`);
			assert.equal(node, "b", "only b is another member");
			return p.db.receive(shipment);
		},
	});
	shippers.push(p.shipper);
	return p;
}

function activate(p: Pair, view: View = AB): void {
	p.shipper.onView(view);
	p.shipper.onStateChange("down", "ready");
}

/** Appends count messages for each key, ids <key>#<i>. */
function fill(store: Store, keys: string[], count = 3): void {
	const rows = [];
	for (let i = 0; i < count; i++) for (const key of keys) rows.push({ id: `${key}#${i}`, key, payload: `payload ${i} of ${key}` });
	store.append(rows);
}

function foreignHeld(store: Store, view: View, self = "a"): string[] {
	return store.keysHeld().filter((k) => view.ring.ownerOf(k) !== self);
}

describe("Shipper", () => {
	it("moves rows for foreign keys to their owner, keeps its own, keeps stamps", async () => {
		const p = pair({ batchRows: 50 });
		fill(p.a, ALL_KEYS.slice(0, 60), 3);
		const before = new Map(p.a.scan(0, 10_000).map((r) => [r.id, r.stamp]));
		activate(p);
		await waitFor(() => foreignHeld(p.a, AB).length === 0, { message: "foreign keys gone from a", detail: () => `${foreignHeld(p.a, AB).length} left` });
		const bRows = p.b.scan(0, 10_000);
		const bKeys = ALL_KEYS.slice(0, 60).filter((k) => AB.ring.ownerOf(k) === "b");
		assert.equal(bRows.length, bKeys.length * 3);
		for (const r of bRows) {
			assert.equal(AB.ring.ownerOf(r.key), "b");
			assert.equal(r.stamp, before.get(r.id), `${r.id} keeps its stamp`);
		}
		for (const key of bKeys)
			assert.deepEqual(
				p.b.messagesOf(key).map((r) => r.id),
				[`${key}#0`, `${key}#1`, `${key}#2`],
			);
		const aRows = p.a.scan(0, 10_000);
		assert.equal(aRows.length, (60 - bKeys.length) * 3);
		for (const r of aRows) assert.equal(AB.ring.ownerOf(r.key), "a");
		assert.ok(p.calls.every((c) => c.viewId === AB.id && c.rows <= 50));
		assert.equal(p.shipper.shippedRows, bRows.length);
		assert.equal(p.a.pendingCount, aRows.length);
	});

	it("ships rows stored after the view too, and nothing while inactive", async () => {
		const p = pair();
		p.shipper.onView(AB);
		fill(p.a, B_KEYS.slice(0, 5), 1);
		await sleep(30);
		assert.equal(p.calls.length, 0, "down: nothing ships");
		assert.equal(p.shipper.outboundKeys, 5);
		p.shipper.onStateChange("down", "rehashing");
		await waitFor(() => p.b.pendingCount === 5, { message: "first rows at b" });
		fill(p.a, [...B_KEYS.slice(5, 10), ...A_KEYS.slice(0, 5)], 1);
		await waitFor(() => p.b.pendingCount === 10, { message: "later rows at b" });
		assert.equal(p.a.pendingCount, 5);
		p.shipper.onStateChange("rehashing", "assembling");
		fill(p.a, B_KEYS.slice(10, 12), 1);
		await sleep(30);
		assert.equal(p.b.pendingCount, 10, "assembling: nothing ships");
	});

	it("moves actor records and processed ids with their key", async () => {
		const p = pair();
		const key = B_KEYS[0];
		const [m] = p.a.append([{ id: "done", key, payload: "x" }]).stored;
		await p.da.commit({ done: [{ id: m.id, key }], actors: [{ id: key, payload: { n: 3 }, timeout: 7, deleted: false }] });
		await p.da.commit({ actors: [{ id: B_KEYS[1], payload: "only a record", timeout: 0, deleted: false }] });
		const version = p.a.actor(key)!.version;
		assert.ok(version! > 0, "a commit through the journal versions the record");
		activate(p);
		await waitFor(() => foreignHeld(p.a, AB).length === 0, { message: "records shipped" });
		assert.deepEqual(p.b.actor(key), { id: key, payload: { n: 3 }, timeout: 7, deleted: false, version }, "the record keeps its version");
		assert.equal(p.b.actor(B_KEYS[1])!.payload, "only a record");
		assert.equal(p.b.append([{ id: "done", key, payload: "x" }]).duplicates, 1, "b knows the id was processed");
		assert.equal(p.a.actorRecordCount, 0);
		assert.equal(p.a.processedCount, 0);
		// A record written later (a replace with a foreign new id) ships when noted.
		await p.da.commit({ actors: [{ id: B_KEYS[2], payload: "late", timeout: 0, deleted: false }] });
		p.shipper.noteKey(B_KEYS[2]);
		p.shipper.noteKey(A_KEYS[0]);
		await waitFor(() => p.b.actor(B_KEYS[2]) !== undefined, { message: "noted record shipped" });
		assert.equal(p.a.actor(B_KEYS[2]), undefined);
	});

	it("retries after transient failures and loses nothing", async () => {
		const p = pair({ batchRows: 10 });
		p.failNext = 3;
		fill(p.a, B_KEYS.slice(0, 8), 4);
		activate(p);
		await waitFor(() => p.b.pendingCount === 32, { message: "all rows at b after retries", timeoutMs: 8000 });
		assert.equal(p.a.pendingCount, 0);
		assert.equal(p.shipper.failures, 3);
		const ids = p.b.scan(0, 1000).map((r) => r.id);
		assert.equal(new Set(ids).size, 32, "each row once");
		for (const key of B_KEYS.slice(0, 8))
			assert.deepEqual(
				p.b.messagesOf(key).map((r) => r.id),
				[0, 1, 2, 3].map((i) => `${key}#${i}`),
			);
	});

	it("forgets nothing while the owner refuses, and ships once it accepts", async () => {
		const p = pair();
		p.refusing = true;
		fill(p.a, B_KEYS.slice(0, 4), 2);
		activate(p);
		await waitFor(() => p.calls.length >= 3, { message: "three refused attempts", timeoutMs: 5000 });
		assert.equal(p.a.pendingCount, 8, "refused rows stay");
		assert.equal(p.b.pendingCount, 0);
		assert.deepEqual(foreignHeld(p.a, AB).sort(), B_KEYS.slice(0, 4).sort());
		p.refusing = false;
		await waitFor(() => p.b.pendingCount === 8, { message: "rows at b after the refusal ended", timeoutMs: 5000 });
		assert.equal(p.a.pendingCount, 0);
	});

	it("a new view cuts a refusal's backoff short: the owner that refused may take the keys in it", async () => {
		const p = pair();
		p.refusing = true;
		fill(p.a, B_KEYS.slice(0, 2), 1);
		activate(p);
		// Backoffs of 50, 100, 200, 400 and 800 ms: after the sixth refusal the next try waits 1.6 s.
		await waitFor(() => p.calls.length >= 6, { message: "six refused attempts", timeoutMs: 5000 });
		p.refusing = false;
		const refused = p.calls.length;
		p.shipper.onView(viewOf(["a", "b"]));
		await sleep(300);
		assert.ok(p.calls.length > refused, "shipped again at once under the new view");
		await waitFor(() => p.b.pendingCount === 2, { message: "rows at b", timeoutMs: 1000 });
	});

	it("a failure after some parts went keeps order and ships the rest exactly once", async () => {
		const p = pair({ batchRows: 3 });
		const key = B_KEYS[0];
		fill(p.a, [key], 10);
		p.failCalls.add(2);
		activate(p);
		await waitFor(() => p.b.pendingCount === 10, { message: "all ten rows at b" });
		assert.deepEqual(
			p.b.messagesOf(key).map((r) => r.id),
			Array.from({ length: 10 }, (_, i) => `${key}#${i}`),
		);
		assert.equal(p.a.pendingCount, 0);
	});

	it("does not ship keys whose actor is still held, until released and kicked", async () => {
		const p = pair();
		const [heldKey, freeKey] = B_KEYS;
		p.held.add(heldKey);
		fill(p.a, [heldKey, freeKey], 2);
		activate(p);
		await waitFor(() => p.b.messagesOf(freeKey).length === 2, { message: "free key shipped" });
		await sleep(30);
		assert.equal(p.b.messagesOf(heldKey).length, 0, "held key not shipped");
		assert.equal(p.a.messagesOf(heldKey).length, 2);
		p.held.delete(heldKey);
		p.shipper.kick();
		await waitFor(() => p.b.messagesOf(heldKey).length === 2, { message: "released key shipped" });
		assert.equal(p.a.pendingCount, 0);
	});

	it("handoff(view) resolves only after every key held for others at that moment was shipped", async () => {
		const p = pair();
		const [heldKey, ...others] = B_KEYS.slice(0, 6);
		p.held.add(heldKey);
		p.gate = deferred();
		fill(p.a, [heldKey, ...others, ...A_KEYS.slice(0, 3)], 2);
		activate(p);
		const handoff = p.shipper.handoff(AB);
		await waitFor(() => p.calls.length > 0, { message: "a shipment in flight" });
		assert.equal(await isSettled(handoff), false, "ship has not returned yet");
		p.gate.resolve();
		await waitFor(() => others.every((k) => p.b.messagesOf(k).length === 2), { message: "unheld keys shipped" });
		assert.equal(await isSettled(handoff), false, "the held key is part of the handoff");
		p.held.delete(heldKey);
		p.shipper.kick();
		await handoff;
		assert.deepEqual(foreignHeld(p.a, AB), []);
		assert.equal(p.a.pendingCount, 6, "a's own rows stay");
	});

	it("handoff resolves at once when nothing is foreign, or for a view that is not current", async () => {
		const p = pair();
		fill(p.a, A_KEYS.slice(0, 3), 1);
		activate(p);
		await p.shipper.handoff(AB);
		fill(p.a, B_KEYS.slice(0, 3), 1);
		p.refusing = true;
		await p.shipper.handoff(viewOf(["a", "b"])); // equal members, but not the view it was given
		assert.equal(await isSettled(p.shipper.handoff(AB)), false, "refused rows keep the current handoff open");
	});

	it("moves results and dead letters with their key to the owner, who can publish and requeue them", async () => {
		const p = pair();
		const [key, other] = B_KEYS;
		fill(p.a, [key, other], 2);
		const [first, second] = p.a.messagesOf(key);
		await p.da.commit({ done: [{ id: first.id, key }], outbox: [{ key, body: '"result of #0"' }] });
		await p.da.commit({ dead: [{ id: second.id, reason: "broke" }] });
		await p.da.commit({ outbox: [{ key: A_KEYS[0], body: '"a\'s own result"' }] });
		activate(p);
		await p.shipper.handoff(AB);
		assert.deepEqual(
			p.b.takeOutbox(10).map((o) => [o.key, o.body]),
			[[key, '"result of #0"']],
		);
		assert.deepEqual(
			p.b.dead(10).map((d) => [d.id, d.reason]),
			[[second.id, "broke"]],
		);
		assert.deepEqual(
			p.a.outbox(10).map((o) => o.body),
			['"a\'s own result"'],
			"a keeps the results of its own keys",
		);
		assert.equal(p.a.deadCount, 0);
		assert.deepEqual(
			(await p.db.requeueDead(10)).requeued.map((r) => r.id),
			[second.id],
		);
	});

	it("a result the relay has in flight is never shipped: a leaving node's handoff waits until it is confirmed or given back", async () => {
		const p = pair();
		const [confirmedKey, givenBackKey] = B_KEYS;
		await p.da.commit({
			outbox: [
				{ key: confirmedKey, body: '"c"' },
				{ key: givenBackKey, body: '"g"' },
				{ key: givenBackKey, body: '"g2"' },
			],
		});
		const inFlight = p.a.takeOutbox(2);
		assert.deepEqual(
			inFlight.map((o) => o.body),
			['"c"', '"g"'],
		);
		p.shipper.onView(AB);
		p.shipper.onStateChange("ready", "stopping");
		const handoff = p.shipper.handoff(AB);
		await waitFor(() => p.b.outboxCount === 1, { message: "the result not in flight shipped" });
		await sleep(30);
		assert.equal(await isSettled(handoff), false, "a leaving node waits for its results in flight");
		await p.da.published([inFlight[0]]);
		p.a.giveBack([inFlight[1].seq]);
		await handoff;
		assert.deepEqual(
			p.b
				.outbox(10)
				.map((o) => o.body)
				.sort(),
			['"g"', '"g2"'],
			"the result given back was shipped, the confirmed one was not",
		);
		assert.equal(p.a.outboxCount, 0);
	});

	it("a staying node's handoff does not wait for results in flight: they ship later if given back", async () => {
		const p = pair();
		const [key] = B_KEYS;
		fill(p.a, [key], 1);
		await p.da.commit({ outbox: [{ key, body: '"r"' }] });
		const [entry] = p.a.takeOutbox(1);
		activate(p);
		await p.shipper.handoff(AB);
		assert.equal(p.b.messagesOf(key).length, 1, "the key's messages moved");
		assert.equal(p.b.outboxCount, 0);
		p.a.giveBack([entry.seq]);
		await waitFor(() => p.b.outboxCount === 1, { message: "the result given back shipped" });
		assert.equal(p.a.outboxCount, 0);
	});

	it("a receiver whose disk is full (SQLITE_FULL) takes nothing; the sender keeps every row and ships them, in order, once there is room", async () => {
		const p = pair();
		const db = (p.b as unknown as { db: Database.Database }).db;
		const limit = db.pragma("max_page_count", { simple: true }) as number;
		db.pragma(`max_page_count = ${db.pragma("page_count", { simple: true }) as number}`);
		const keys = B_KEYS.slice(0, 20);
		p.a.append(keys.flatMap((key) => [0, 1, 2].map((i) => ({ id: `${key}#${i}`, key, payload: "x".repeat(2000) }))));
		activate(p);
		await waitFor(() => p.shipper.failures >= 2, { message: "shipping refused by the full disk" });
		assert.equal(p.a.pendingCount, 60, "the sender forgot nothing");
		assert.equal(p.b.pendingCount, 0);
		db.pragma(`max_page_count = ${limit}`);
		await waitFor(() => p.b.pendingCount === 60, { message: "shipped once there is room" });
		for (const key of keys)
			assert.deepEqual(
				p.b.messagesOf(key).map((r) => r.id),
				[0, 1, 2].map((i) => `${key}#${i}`),
			);
		assert.equal(p.a.pendingCount, 0);
	});

	it("a new view makes keys this node owned foreign and ships them", async () => {
		const p = pair();
		const solo = viewOf(["a"]);
		fill(p.a, ALL_KEYS.slice(0, 40), 1);
		activate(p, solo);
		await sleep(30);
		assert.equal(p.calls.length, 0, "a owns everything alone");
		p.shipper.onView(AB);
		p.shipper.onStateChange("ready", "rehashing");
		await p.shipper.handoff(AB);
		assert.deepEqual(foreignHeld(p.a, AB), []);
		assert.equal(p.b.pendingCount, ALL_KEYS.slice(0, 40).filter((k) => AB.ring.ownerOf(k) === "b").length);
	});
});

describe("split", () => {
	function shipment(count: number, payload = (i: number) => `p${i}`): Shipment {
		const messages = Array.from({ length: count }, (_, i) => ({
			id: `m${i}`,
			key: `k${i % 3}`,
			stamp: i,
			payload: payload(i),
			headers: i % 2 ? { h: i } : null,
			receivedAt: 0,
			attempts: 0,
		}));
		return {
			messages,
			actors: [{ id: "k0", payload: 1, timeout: 0, deleted: false }],
			processed: [{ id: "old", key: "k1", at: 1 }],
		};
	}

	function sizeOf(m: Shipment["messages"][number]): number {
		return m.payload.length + (m.headers ? JSON.stringify(m.headers).length : 0) + m.key.length + m.id.length;
	}

	const items = (p: Shipment) => p.actors.length + p.processed.length + p.messages.length;

	it("respects maxRows counting every item, keeps message order, and sends records before messages", () => {
		const whole = shipment(25);
		const parts = split(whole, 10, 1_000_000);
		assert.deepEqual(parts.map(items), [10, 10, 7]);
		assert.deepEqual(
			parts.flatMap((p) => p.messages),
			whole.messages,
			"same messages, same order",
		);
		assert.deepEqual(
			parts.flatMap((p) => p.actors),
			whole.actors,
		);
		assert.deepEqual(
			parts.flatMap((p) => p.processed),
			whole.processed,
		);
		assert.deepEqual(parts[0].actors, whole.actors, "records travel in the first part");
		assert.deepEqual(parts[0].processed, whole.processed);
	});

	it("bounds parts full of records too (a long dedupe window must not make one huge packet)", () => {
		const processed = Array.from({ length: 5000 }, (_, i) => ({ id: `id-${i}`, key: `k${i % 50}`, at: i }));
		const parts = split({ messages: [], actors: [], processed }, 1000, 1_000_000);
		assert.deepEqual(parts.map(items), [1000, 1000, 1000, 1000, 1000]);
		assert.deepEqual(
			parts.flatMap((p) => p.processed),
			processed,
		);
	});

	it("respects maxBytes, but always puts at least one item in a part", () => {
		const whole = shipment(40, (i) => "x".repeat(10 + (i % 7) * 13));
		const parts = split(whole, 1000, 200);
		assert.ok(parts.length > 1);
		assert.deepEqual(
			parts.flatMap((p) => p.messages),
			whole.messages,
		);
		for (const p of parts) {
			assert.ok(items(p) >= 1);
			const bytes = p.messages.reduce((sum, m) => sum + sizeOf(m), 0);
			assert.ok(bytes <= 200 || p.messages.length === 1, `part of ${bytes} bytes`);
		}
		const huge = split({ ...shipment(3, () => "y".repeat(500)), actors: [], processed: [] }, 1000, 200);
		assert.deepEqual(
			huge.map((p) => p.messages.length),
			[1, 1, 1],
		);
	});

	it("a shipment with no messages is one part with the records", () => {
		const parts = split({ messages: [], actors: [{ id: "k", payload: null, timeout: 0, deleted: true }], processed: [] }, 10, 100);
		assert.equal(parts.length, 1);
		assert.equal(parts[0].actors.length, 1);
	});

	it("counts bytes, not UTF-16 code units", () => {
		const whole = shipment(30, () => "日本語のテキスト".repeat(4));
		const maxBytes = 400;
		for (const p of split(whole, 1000, maxBytes)) {
			const bytes = p.messages.reduce(
				(sum, m) =>
					sum +
					Buffer.byteLength(m.payload) +
					(m.headers ? Buffer.byteLength(JSON.stringify(m.headers)) : 0) +
					Buffer.byteLength(m.key) +
					Buffer.byteLength(m.id),
				0,
			);
			assert.ok(bytes <= maxBytes || p.messages.length === 1, `a part holds ${bytes} bytes of payload (max ${maxBytes})`);
		}
	});
});
