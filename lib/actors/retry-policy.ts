/**
 * How failed performs are retried: their rows come back with exponential
 * backoff until maxAttempts, then go to the dead-letter table with the error.
 */
import type { Commit, StoredMessage } from "../store/store";

export class RetryPolicy {
	readonly maxAttempts: number;
	private readonly baseMs: number;
	private readonly maxMs: number;

	constructor(maxAttempts: number, baseMs: number, maxMs: number) {
		this.maxAttempts = maxAttempts;
		this.baseMs = baseMs;
		this.maxMs = maxMs;
	}

	/** A failed perform's rows: retried while they have attempts left, dead-lettered with the error after. */
	failureCommit(rows: readonly StoredMessage[], error: Error): Commit {
		const commit: Commit = {};
		const dying = rows.filter((r) => r.attempts + 1 >= this.maxAttempts);
		const living = rows.filter((r) => r.attempts + 1 < this.maxAttempts);
		if (dying.length > 0) commit.dead = dying.map((r) => ({ id: r.id, reason: error.message || error.name }));
		if (living.length > 0) commit.failed = living.map((r) => r.id);
		return commit;
	}

	/** Wait before the given attempt (1 for the first retry). */
	backoffMs(attempts: number): number {
		return Math.min(this.baseMs * 2 ** Math.max(0, attempts - 1), this.maxMs);
	}
}
