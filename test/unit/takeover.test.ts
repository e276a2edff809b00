import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { DurableStore } from "../../lib/durable/durable-store";
import type { Positioned } from "../../lib/durable/journal";
import type { JournalRecord } from "../../lib/durable/records";
import { type OtherJournals, Takeover } from "../../lib/durable/takeover";
import { Store } from "../../lib/store/store";
import { viewOf, type View } from "../../lib/topology/topology";
import { sleep } from "../support/wait";

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

function node(self: string, journals: MemoryJournals, live: Set<string>, graceMs = 60_000) {
	const store = new Store(":memory:");
	stores.push(store);
	const durable = DurableStore.local(store);
	let current: View | null = null;
	const takeover = new Takeover({
		self,
		durable,
		journals: () => journals,
		liveInstances: () => live,
		graceMs,
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

describe("taking over the journals of lost instances", () => {
	it("the view's first member takes over a journal no live node advertises: its rows, actor state, processed ids and results, and deletes it", async () => {
		const journals = new MemoryJournals();
		lostInstance(journals, "lost");
		const a = node("a", journals, new Set(["mine"]));
		a.takeover.noteLive(["lost"]);
		await a.handoff(viewOf(["a", "b"]));
		assert.deepEqual(journals.sealed, ["lost"]);
		assert.equal(journals.logs.has("lost"), false, "the orphan is deleted");
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
		lostInstance(journals, "lost");
		const b = node("b", journals, new Set());
		b.takeover.noteLive(["lost"]);
		await b.handoff(viewOf(["a", "b"]));
		assert.deepEqual(journals.sealed, []);
		assert.equal(b.store.pendingCount, 0);
	});

	it("an instance never seen live is left alone while it may be starting, and taken over once the grace is over", async () => {
		const journals = new MemoryJournals();
		lostInstance(journals, "never-seen");
		const a = node("a", journals, new Set(), 300);
		const started = Date.now();
		await a.handoff(viewOf(["a"]));
		assert.ok(Date.now() - started >= 250, "waited for the grace");
		assert.deepEqual(journals.sealed, ["never-seen"]);
		assert.equal(a.store.pendingCount, 2);
	});

	it("a starting instance that is announced during the grace is never sealed", async () => {
		const journals = new MemoryJournals();
		journals.write("joiner", { t: "open", node: "c", at: 0 });
		const live = new Set<string>();
		const a = node("a", journals, live, 5000);
		const handoff = a.handoff(viewOf(["a"]));
		await sleep(300);
		live.add("joiner");
		await handoff;
		assert.deepEqual(journals.sealed, []);
		assert.equal(journals.logs.has("joiner"), true);
	});

	it("a handoff for a view that is no longer current stops waiting", async () => {
		const journals = new MemoryJournals();
		journals.write("slow", { t: "open", node: "c", at: 0 });
		const a = node("a", journals, new Set(), 60_000);
		const first = a.handoff(viewOf(["a"]));
		await sleep(100);
		const second = a.handoff(viewOf(["a", "b"], undefined, "other"));
		await first;
		journals.logs.delete("slow");
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
