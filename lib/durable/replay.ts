/**
 * Rebuilds an instance's state from its journal into a scratch store.
 *
 * Records apply in order. A snapshot is the store as it was before the message
 * holding its first part (`begin`); the writer goes on writing while it is taken,
 * so records come between its parts. Once its last part is read, the snapshot
 * replaces everything before it, with the records that came after its first part
 * applied on top: the writer may purge what came before once the last part is
 * stored, and a reader that raced that purge has seen only some of that history.
 * A snapshot whose last part never came (its writer died or was sealed while
 * taking it) is ignored: the records before it and after it stand.
 */
import { Store } from "../store/store";
import type { Positioned } from "./journal";

/** Records applied to the scratch store per transaction. */
const BATCH = 200;

export class Replay {
	records = 0;
	/** Complete snapshots read. */
	snapshots = 0;
	private state = new Store(":memory:");
	/** A snapshot being read, not yet complete, and the records since its first part. */
	private next: { store: Store; since: Positioned[] } | null = null;
	private batch: Positioned[] = [];

	add(entry: Positioned): void {
		this.records++;
		const { record } = entry;
		if (record.t !== "snapshot") {
			this.batch.push(entry);
			this.next?.since.push(entry);
			if (this.batch.length >= BATCH) this.flush();
			return;
		}
		if (record.begin) {
			this.next?.store.close();
			this.next = { store: new Store(":memory:"), since: [] };
		}
		if (!this.next) return;
		this.next.store.receive(record.part);
		if (!record.last) return;
		const { store, since } = this.next;
		this.next = null;
		for (let i = 0; i < since.length; i += BATCH) store.applyAll(since.slice(i, i + BATCH));
		this.snapshots++;
		this.batch = [];
		this.state.close();
		this.state = store;
	}

	/** The state replayed so far; the caller closes it. */
	finish(): Store {
		this.flush();
		this.next?.store.close();
		this.next = null;
		return this.state;
	}

	/** Drops what was replayed (a read that failed). */
	discard(): void {
		this.next?.store.close();
		this.state.close();
	}

	private flush(): void {
		if (this.batch.length === 0) return;
		this.state.applyAll(this.batch);
		this.batch = [];
	}
}
