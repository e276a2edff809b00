/** Helpers for tests of the store's records: applying them, and reading back everything a store holds. */
import type { Positioned } from "../../lib/durable/journal";
import type { JournalRecord } from "../../lib/durable/records";
import type { Store } from "../../lib/store/store";

/** Applies records at consecutive positions from `from`, in one group. */
export function applyFrom(store: Store, from: number, ...records: JournalRecord[]): unknown[] {
	return store.applyAll(records.map((record, i): Positioned => ({ record, seq: from + i })));
}

export function row(id: string, key: string, stamp: number, payload = `p-${id}`) {
	return { id, key, stamp, payload };
}

/** Everything a store holds, without its local seqs, in a comparable order (the results taken to read them are given back). */
export function contents(store: Store) {
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
