import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { DurableStore } from "../../lib/durable/durable-store";
import type { Positioned } from "../../lib/durable/journal";
import { newInstanceId, nodeOfInstance } from "../../lib/durable/instance-id";
import type { JournalRecord } from "../../lib/durable/records";
import { type OtherJournals, Takeover } from "../../lib/durable/takeover";
import { Store } from "../../lib/store/store";
import { viewOf, type View } from "../../lib/topology/topology";
import { isSettled, sleep } from "../support/wait";

/** Journals of other instances kept in memory, with the seal and remove semantics of the JetStream ones. */
class MemoryJournals implements OtherJournals {
	readonly logs = new Map<string, Positioned[]>();
	readonly sealed: string[] = [];
	private position = 0;

	write(instance: string, record: JournalRecord): number {
		const seq = ++this.position;
		let log = this.logs.get(instance);
		if (!log) this.logs.set(instance, (log = []));
		log.push({ record, seq });
		return seq;
	}

	async instances(): Promise<string[]> {
		return [...this.logs.keys()];
	}

	async seal(instance: string, by: string): Promise<number> {
		this.sealed.push(instance);
		return this.write(instance, { t: "seal", by, at: 0 });
	}

	async *read(instance: string, untilSeq: number): AsyncIterable<Positioned> {
		for (const entry of this.logs.get(instance) ?? []) if (entry.seq <= untilSeq) yield entry;
	}

	async remove(instance: string): Promise<void> {
		this.logs.delete(instance);
	}
}

const stores: Store[] = [];
after(() => {
	for (const s of stores) s.close();
});

/** Discovery as the node sees it: keyhive node id → the instance it advertises (null while it opens its journal). */
type Live = Map<string, string | null>;

function node(self: string, journals: MemoryJournals, live: Live = new Map(), graceMs = 0, owner = { value: true }) {
	const store = new Store(":memory:");
	stores.push(store);
	const durable = DurableStore.local(store);
	let current: View | null = null;
	const takeover = new Takeover({
		self,
		durable,
		journals: () => journals,
		liveNodes: () => live,
		graceMs,
		confirmOwner: () => (owner.value ? Promise.resolve() : Promise.reject(new Error("this node was taken over"))),
		isCurrent: (view) => view === current,
	});
	return {
		store,
		takeover,
		handoff(view: View) {
			current = view;
			return takeover.handoff(view);
		},
	};
}

/** A lost instance's journal: it ingested rows of k1 and k2, performed one of k1, and left a result. */
function lostInstance(journals: MemoryJournals, instance: string): void {
	journals.write(instance, { t: "open", node: "gone", at: 0 });
	journals.write(instance, {
		t: "append",
		rows: [
			{ id: "m1", key: "k1", payload: "a", stamp: 10 },
			{ id: "m2", key: "k1", payload: "b", stamp: 11 },
			{ id: "m3", key: "k2", payload: "c", stamp: 12 },
		],
	});
	journals.write(instance, {
		t: "commit",
		commit: {
			done: [{ id: "m1", key: "k1" }],
			actors: [{ id: "k1", payload: { n: 1 }, timeout: 0, deleted: false }],
			outbox: [{ uid: "r1", key: "k1", body: '{"n":1}' }],
		},
		at: 5,
	});
}

const lost = newInstanceId("gone");

describe("taking over the journals of lost instances", () => {
	it("the view's first member takes over the journal of a node not in discovery: its rows, actor state, processed ids and results, and deletes it", async () => {
		const journals = new MemoryJournals();
		lostInstance(journals, lost);
		const a = node("a", journals);
		await a.handoff(viewOf(["a", "b"]));
		assert.deepEqual(journals.sealed, [lost]);
		assert.equal(journals.logs.has(lost), false, "the orphan is deleted");
		assert.deepEqual(
			a.store.messagesOf("k1").map((m) => [m.id, m.stamp]),
			[["m2", 11]],
		);
		assert.equal(a.store.messagesOf("k2").length, 1);
		assert.deepEqual(a.store.actor("k1")?.payload, { n: 1 });
		assert.equal(a.store.append([{ id: "m1", key: "k1", payload: "again" }]).duplicates, 1, "m1 was performed: a redelivery is dropped");
		assert.equal(a.store.outboxCount, 1);
	});

	it("a node that is not the view's first member takes nothing over", async () => {
		const journals = new MemoryJournals();
		lostInstance(journals, lost);
		const b = node("b", journals);
		await b.handoff(viewOf(["a", "b"]));
		assert.deepEqual(journals.sealed, []);
		assert.equal(b.store.pendingCount, 0);
	});

	it("a journal whose node is in discovery and advertises it is live; one its node no longer advertises (it restarted) is taken over", async () => {
		const journals = new MemoryJournals();
		const earlier = newInstanceId("c");
		const current = newInstanceId("c");
		lostInstance(journals, earlier);
		journals.write(current, { t: "open", node: "c", at: 1 });
		const a = node("a", journals, new Map([["c", current]]));
		await a.handoff(viewOf(["a", "c"]));
		assert.deepEqual(journals.sealed, [earlier]);
		assert.equal(journals.logs.has(current), true);
		assert.equal(a.store.pendingCount, 2);
	});

	it("the journals of a node in discovery that advertises no instance yet wait until it does, and are never sealed if it is theirs", async () => {
		const journals = new MemoryJournals();
		const joiner = newInstanceId("c");
		journals.write(joiner, { t: "open", node: "c", at: 0 });
		const live: Live = new Map([["c", null]]);
		const a = node("a", journals, live);
		const handoff = a.handoff(viewOf(["a", "c"]));
		await sleep(300);
		assert.equal(await isSettled(handoff), false, "the handoff waits for c to advertise its instance");
		live.set("c", joiner);
		await handoff;
		assert.deepEqual(journals.sealed, []);
		assert.equal(journals.logs.has(joiner), true);
	});

	it("a journal whose node was never seen in discovery waits for the grace (the node may be starting), then is taken over", async () => {
		const journals = new MemoryJournals();
		lostInstance(journals, lost);
		const a = node("a", journals, new Map(), 300);
		const started = performance.now();
		await a.handoff(viewOf(["a"]));
		assert.ok(performance.now() - started >= 250, "waited for the grace");
		assert.deepEqual(journals.sealed, [lost]);
	});

	it("a journal whose node left discovery after advertising it is taken over at once", async () => {
		const journals = new MemoryJournals();
		const crashed = newInstanceId("c");
		lostInstance(journals, crashed);
		const live: Live = new Map([["c", crashed]]);
		const a = node("a", journals, live, 60_000);
		a.takeover.noteLive(live);
		live.delete("c");
		await a.handoff(viewOf(["a"]));
		assert.deepEqual(journals.sealed, [crashed]);
	});

	it("a node that no longer owns its own journal (it stalled and was taken over) seals nothing", async () => {
		const journals = new MemoryJournals();
		const alive = newInstanceId("c");
		lostInstance(journals, alive);
		const a = node("a", journals, new Map(), 0, { value: false });
		await assert.rejects(a.handoff(viewOf(["a"])), /taken over/);
		assert.deepEqual(journals.sealed, []);
	});

	it("a journal whose name says no node is taken over", async () => {
		const journals = new MemoryJournals();
		lostInstance(journals, "not-an-instance-id");
		const a = node("a", journals);
		await a.handoff(viewOf(["a"]));
		assert.deepEqual(journals.sealed, ["not-an-instance-id"]);
	});

	it("a handoff for a view that is no longer current stops waiting", async () => {
		const journals = new MemoryJournals();
		const slow = newInstanceId("c");
		journals.write(slow, { t: "open", node: "c", at: 0 });
		const a = node("a", journals, new Map([["c", null]]));
		const first = a.handoff(viewOf(["a"]));
		await sleep(100);
		const second = a.handoff(viewOf(["a", "b"], undefined, "other"));
		await first;
		journals.logs.delete(slow);
		await second;
		assert.deepEqual(journals.sealed, []);
	});

	it("of two copies of an actor record the later one stays, whichever arrives first", () => {
		const store = new Store(":memory:");
		stores.push(store);
		store.applyAll([{ record: { t: "commit", commit: { actors: [{ id: "k", payload: "new", timeout: 0, deleted: false }] }, at: 0 }, seq: 9 }]);
		store.receive({ messages: [], processed: [], actors: [{ id: "k", payload: "old", timeout: 0, deleted: false, version: 4 }] });
		assert.equal(store.actor("k")?.payload, "new");
		store.receive({ messages: [], processed: [], actors: [{ id: "k", payload: "newer", timeout: 0, deleted: false, version: 12 }] });
		assert.equal(store.actor("k")?.payload, "newer");
	});
});

describe("instance ids", () => {
	it("name their node, whatever characters the node id has, and are new at every start", () => {
		for (const nodeID of ["n1", "keyhive-3.local-42", "a.b*c>d e", "ümlaut"]) {
			const a = newInstanceId(nodeID);
			assert.match(a, /^[A-Za-z0-9_-]+$/, "one NATS subject token");
			assert.equal(nodeOfInstance(a), nodeID);
			assert.notEqual(newInstanceId(nodeID), a);
		}
		assert.equal(nodeOfInstance("0123456789abcdef"), null);
	});
});
