/**
 * Commits finished performs in groups: every perform finished in one turn of
 * the event loop goes into one SQLite transaction. When that transaction
 * fails, each perform is committed alone, so one bad perform cannot hold back
 * the others; the ones that still fail are handed back to the runtime.
 * A commit that fails for a full disk (SQLITE_FULL) is no fault of its
 * perform: it goes back apart (noRoom), and the full disk is logged once until
 * a commit succeeds again, not once per perform per retry.
 */
import { type Commit, isDiskFull, type Store, type StoredMessage } from "../store/store";
import type { Actor } from "./actor";
import type { PerformLog } from "./perform-log";
import type { TerminateReason } from "./types";

/** A perform that is over and waits for its commit. */
export interface Finished {
	actor: Actor;
	rows: StoredMessage[];
	result: unknown;
	commit: Commit;
	removed: TerminateReason | null;
	failed: Error | null;
	/** Start of the perform on the perform log's clock (0 without a log). */
	started: number;
	update?: { payload: unknown; interval: number } | null;
}

export interface CommitBatcherOptions {
	store: Store;
	performLog: PerformLog | null;
	/** The perform is committed: let its actor go on. */
	committed(f: Finished): void;
	/** The perform's own commit failed too. */
	rejected(f: Finished, error: Error): void;
	/** The perform's own commit found the disk full: nothing of it was written. */
	noRoom(f: Finished): void;
	logger?: { info(msg: string): void; error(msg: string): void };
}

export class CommitBatcher {
	private readonly options: CommitBatcherOptions;
	private queue: Finished[] = [];
	private scheduled = false;
	/** The last commit failed for a full disk (and that was logged). */
	private diskFull = false;

	constructor(options: CommitBatcherOptions) {
		this.options = options;
	}

	/** Performs waiting for their commit. */
	get pending(): number {
		return this.queue.length;
	}

	add(f: Finished): void {
		this.queue.push(f);
		if (this.scheduled) return;
		this.scheduled = true;
		setImmediate(() => this.flush());
	}

	/** Commits every queued perform in one transaction, then lets their actors go on. */
	private flush(): void {
		this.scheduled = false;
		const batch = this.queue;
		if (batch.length === 0) return;
		this.queue = [];
		const { store, performLog, committed } = this.options;
		try {
			store.commit(merge(batch));
		} catch (err) {
			if (isDiskFull(err)) this.noteDiskFull();
			else this.options.logger?.error(`commit of ${batch.length} performs failed: ${(err as Error).message}`);
			this.commitOneByOne(batch);
			return;
		}
		this.noteRoom();
		const ended = performLog ? performLog.now() : 0;
		for (const f of batch) {
			if (performLog && f.rows.length > 0) performLog.record(f.actor.id, f.started, ended, f.rows.length);
			committed(f);
		}
		performLog?.flush();
	}

	private commitOneByOne(batch: Finished[]): void {
		const ok: Finished[] = [];
		for (const f of batch) {
			try {
				this.options.store.commit(f.commit);
				ok.push(f);
			} catch (err) {
				if (isDiskFull(err)) this.options.noRoom(f);
				else this.options.rejected(f, err instanceof Error ? err : new Error(String(err)));
			}
		}
		if (ok.length > 0) this.noteRoom();
		for (const f of ok) this.options.committed(f);
	}

	private noteDiskFull(): void {
		if (this.diskFull) return;
		this.diskFull = true;
		this.options.logger?.error(
			`disk full: ${this.options.store.file} has no room to commit performs (SQLITE_FULL); their messages stay pending and are performed again, with no attempt counted, until there is room`,
		);
	}

	private noteRoom(): void {
		if (!this.diskFull) return;
		this.diskFull = false;
		this.options.logger?.info(`disk has room again: performs commit (${this.options.store.file})`);
	}
}

function merge(batch: Finished[]): Commit {
	const merged: Commit = { done: [], failed: [], dead: [], actors: [], outbox: [] };
	for (const f of batch) {
		if (f.commit.done) merged.done!.push(...f.commit.done);
		if (f.commit.failed) merged.failed!.push(...f.commit.failed);
		if (f.commit.dead) merged.dead!.push(...f.commit.dead);
		if (f.commit.actors) merged.actors!.push(...f.commit.actors);
		if (f.commit.outbox) merged.outbox!.push(...f.commit.outbox);
	}
	return merged;
}
