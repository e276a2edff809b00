/**
 * The store's changes, each made durable in the journal before it is applied:
 * what the ingest, the actors, the shipper and the relay call to change state.
 * Reads go to the store itself.
 */
import { randomUUID } from "crypto";
import { type Commit, type NewMessage, type OutboxEntry, type Shipment, Store, type StoredMessage } from "../store/store";
import type { Journal } from "./journal";
import { LocalJournal } from "./local-journal";
import type { EnteringRow } from "./records";
import { split } from "../store/split";
import { Stamps } from "./stamps";

/** Bytes of rows per append or receive record: a record travels in one JetStream message. */
export const RECORD_BYTES = 256 * 1024;

export interface Stored {
	stored: StoredMessage[];
	duplicates: number;
}

export class DurableStore {
	readonly stamps = new Stamps(() => this.journal.epoch());
	private opened: Journal | null = null;

	constructor(readonly store: Store) {}

	/** A store whose own file is its durable copy (a node without a transporter, tests, benchmarks). */
	static local(store: Store): DurableStore {
		const durable = new DurableStore(store);
		durable.use(new LocalJournal(store, Number(store.meta("journal") ?? 0)));
		return durable;
	}

	/** From now on changes go through this journal (the node opens it at start). */
	use(journal: Journal): void {
		this.opened = journal;
	}

	get journal(): Journal {
		if (!this.opened) throw new Error("the store's journal is not open yet");
		return this.opened;
	}

	/** Stamps rows that have none (in their order), and appends them. */
	async append(messages: NewMessage[]): Promise<Stored> {
		const rows = await this.stamped(messages);
		const result: Stored = { stored: [], duplicates: 0 };
		for (const part of partsOf(rows)) {
			const one = (await this.journal.write({ t: "append", rows: part })) as Stored;
			result.stored.push(...one.stored);
			result.duplicates += one.duplicates;
		}
		return result;
	}

	/** Gives every row without a stamp the next stamps of this node, in order (and its arrival time, so a replay keeps it). */
	async stamped(messages: NewMessage[]): Promise<EnteringRow[]> {
		const unstamped = messages.filter((m) => m.stamp === undefined).length;
		let next = unstamped > 0 ? await this.stamps.range(unstamped) : 0;
		const now = Date.now();
		return messages.map((m) => ({ ...m, stamp: m.stamp ?? next++, receivedAt: m.receivedAt ?? now }));
	}

	/** Stores a shipment, in parts that each fit one JetStream message (a receive is idempotent, so a part stored twice is harmless). */
	async receive(shipment: Shipment): Promise<Stored> {
		const result: Stored = { stored: [], duplicates: 0 };
		for (const part of split(shipment, Number.POSITIVE_INFINITY, RECORD_BYTES)) {
			const one = (await this.journal.write({ t: "receive", shipment: part })) as Stored;
			result.stored.push(...one.stored);
			result.duplicates += one.duplicates;
		}
		return result;
	}

	/** Results get their uid here, so a replay of the journal gives them the same one. */
	async commit(commit: Commit): Promise<void> {
		if (commit.outbox) commit = { ...commit, outbox: commit.outbox.map((o) => (o.uid ? o : { ...o, uid: randomUUID() })) };
		await this.journal.write({ t: "commit", commit, at: Date.now() });
	}

	async forget(shipment: Shipment): Promise<void> {
		await this.journal.write({ t: "forget", forgotten: Store.forgottenOf(shipment) });
	}

	/** Results the broker confirmed: deleted, and the relay is done with them. */
	async published(entries: OutboxEntry[]): Promise<void> {
		await this.journal.write({ t: "published", uids: entries.map((e) => e.uid) });
		this.store.settleSent(entries.map((e) => e.seq));
	}

	/** Puts up to limit dead letters back as pending, after every row stamped so far. */
	async requeueDead(limit: number): Promise<{ requeued: StoredMessage[]; dropped: number }> {
		const dead = this.store.dead(limit);
		if (dead.length === 0) return { requeued: [], dropped: 0 };
		let stamp = await this.stamps.range(dead.length);
		const record = { t: "requeue" as const, dead: dead.map((d) => ({ id: d.id, diedAt: d.diedAt, stamp: stamp++ })) };
		return (await this.journal.write(record)) as { requeued: StoredMessage[]; dropped: number };
	}

	/** Forgets processed ids older than the dedupe window. */
	async pruneProcessed(now = Date.now()): Promise<number> {
		return (await this.journal.write({ t: "prune", before: this.store.pruneHorizon(now) })) as number;
	}

	/** Resolves when every change asked for so far is applied (or failed). */
	idle(): Promise<void> {
		return this.opened ? this.opened.idle() : Promise.resolve();
	}
}

function partsOf(rows: EnteringRow[]): EnteringRow[][] {
	const parts: EnteringRow[][] = [];
	let part: EnteringRow[] = [];
	let bytes = 0;
	for (const row of rows) {
		const size = Buffer.byteLength(row.payload) + (row.headers ? Buffer.byteLength(JSON.stringify(row.headers)) : 0) + row.id.length + row.key.length + 64;
		if (part.length > 0 && bytes + size > RECORD_BYTES) {
			parts.push(part);
			part = [];
			bytes = 0;
		}
		part.push(row);
		bytes += size;
	}
	if (part.length > 0) parts.push(part);
	return parts;
}
