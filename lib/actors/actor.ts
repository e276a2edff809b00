/**
 * An actor as the runtime holds it: six fields and a bit set, nothing else,
 * because a million of them live in one Map (BENCHMARKS.md: a seventh field
 * breaks the bytes-per-actor target).
 */

/** A perform of this actor is running (or its result is waiting for the commit). */
export const BUSY = 1;
/** Its key moved away: no new performs, released when idle. */
export const LEAVING = 2;
/** Waiting in the wheel for a retry after a failed perform. */
export const BACKOFF = 4;
/** In the ready queue. */
export const QUEUED = 8;
/** Out of the Map: its wheel entry and queue slot are stale (checked instead of a Map lookup per perform). */
export const RELEASED = 16;

export class Actor {
	id: string;
	payload: unknown;
	/** Periodic perform interval in ms; 0 = perform only when messages arrive. */
	interval: number;
	due = 0;
	flags = 0;
	/** Seconds since the runtime started of the last perform, -1 if none. */
	last = -1;

	constructor(id: string, payload: unknown, interval: number) {
		this.id = id;
		this.payload = payload;
		this.interval = interval;
	}
}
