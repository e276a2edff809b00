/**
 * The journal of a node without a transporter: it runs alone, so its SQLite file
 * is the durable copy and a write is applied at once. Positions are a counter kept
 * in the store, so they go on increasing across restarts.
 */
import type { Journal, JournalTarget } from "./journal";
import type { JournalRecord } from "./records";

export class LocalJournal implements Journal {
	readonly instance = null;
	private position: number;

	constructor(
		private readonly target: JournalTarget,
		lastPosition: number,
	) {
		this.position = lastPosition;
	}

	write(record: JournalRecord): Promise<unknown> {
		try {
			const [result] = this.target.applyAll([{ record, seq: this.position + 1 }]);
			this.position++;
			return Promise.resolve(result);
		} catch (err) {
			return Promise.reject(err);
		}
	}

	async epoch(): Promise<number> {
		return (await this.write({ t: "epoch" })) as number;
	}

	idle(): Promise<void> {
		return Promise.resolve();
	}

	async confirmOwner(): Promise<void> {
		// Nobody else writes this node's file: it always owns it.
	}

	holdSnapshots(): void {
		// The file is its own snapshot: there is none to hold.
	}

	onFenced(): void {
		// Nobody else writes this node's file: it is never fenced.
	}

	async retire(): Promise<void> {}

	async close(): Promise<void> {}
}
