/**
 * Performs that returned a promise and have not settled yet, with when they
 * started, so a perform past the perform timeout can be found. A timed-out
 * perform stays here until its promise settles: its actor stays busy (no
 * second perform of the key, no release, no shipping) and its late result is
 * discarded.
 */
import type { StoredMessage } from "../store/store";

export interface InflightPerform {
	started: number;
	rows: StoredMessage[];
	/** Past the perform timeout: its outcome no longer counts. */
	timedOut: boolean;
}

export class InflightPerforms<A> {
	private readonly byActor = new Map<A, InflightPerform>();

	track(actor: A, started: number, rows: StoredMessage[]): InflightPerform {
		const entry = { started, rows, timedOut: false };
		this.byActor.set(actor, entry);
		return entry;
	}

	/** The promise of the actor's perform settled. */
	settle(actor: A): void {
		this.byActor.delete(actor);
	}

	/** Whether the actor's running perform is past the perform timeout. */
	isTimedOut(actor: A): boolean {
		return this.byActor.get(actor)?.timedOut === true;
	}

	/** Marks every perform running for timeoutMs or longer as timed out; returns those newly marked. */
	markOverdue(now: number, timeoutMs: number): [A, InflightPerform][] {
		const overdue: [A, InflightPerform][] = [];
		for (const [actor, entry] of this.byActor) {
			if (entry.timedOut || now - entry.started < timeoutMs) continue;
			entry.timedOut = true;
			overdue.push([actor, entry]);
		}
		return overdue;
	}
}
