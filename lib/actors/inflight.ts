/**
 * Performs that returned a promise and have not settled yet, with when they
 * started, so a perform past the perform timeout can be found and failed.
 */
import type { StoredMessage } from "../store/store";

export interface InflightPerform {
	started: number;
	rows: StoredMessage[];
}

export class InflightPerforms<A> {
	private readonly byActor = new Map<A, InflightPerform>();

	track(actor: A, started: number, rows: StoredMessage[]): InflightPerform {
		const entry = { started, rows };
		this.byActor.set(actor, entry);
		return entry;
	}

	/** The promise of entry settled: whether its outcome still counts (false once it timed out). */
	settle(actor: A, entry: InflightPerform): boolean {
		if (this.byActor.get(actor) !== entry) return false;
		this.byActor.delete(actor);
		return true;
	}

	/** Takes out every perform running for timeoutMs or longer. */
	takeOverdue(now: number, timeoutMs: number): [A, InflightPerform][] {
		const overdue: [A, InflightPerform][] = [];
		for (const [actor, entry] of this.byActor) {
			if (now - entry.started < timeoutMs) continue;
			this.byActor.delete(actor);
			overdue.push([actor, entry]);
		}
		return overdue;
	}
}
