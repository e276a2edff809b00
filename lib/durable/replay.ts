/**
 * Rebuilds an instance's state from its journal into a scratch store.
 *
 * Records apply in order. A snapshot (parts from `begin` to `last`) replaces
 * everything before it, because the writer may purge what came before once its
 * last part is stored, and a reader that raced that purge has seen only some of
 * that history. A snapshot whose last part never came (its writer died or was
 * sealed while taking it) is ignored: the records before it still stand.
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
	/** A snapshot being read, not yet complete. */
	private next: Store | null = null;
	private batch: Positioned[] = [];

	add(entry: Positioned): void {
		this.records++;
		const { record } = entry;
		if (record.t === "snapshot") {
			this.flush();
			if (record.begin) {
				this.next?.close();
				this.next = new Store(":memory:");
			}
			if (!this.next) return;
			this.next.receive(record.part);
			if (record.last) {
				this.snapshots++;
				this.state.close();
				this.state = this.next;
				this.next = null;
			}
			return;
		}
		if (this.next) {
			this.next.close();
			this.next = null;
		}
		this.batch.push(entry);
		if (this.batch.length >= BATCH) this.flush();
	}

	/** The state replayed so far; the caller closes it. */
	finish(): Store {
		this.flush();
		this.next?.close();
		this.next = null;
		return this.state;
	}

	/** Drops what was replayed (a read that failed). */
	discard(): void {
		this.next?.close();
		this.state.close();
	}

	private flush(): void {
		if (this.batch.length === 0) return;
		this.state.applyAll(this.batch);
		this.batch = [];
	}
}
