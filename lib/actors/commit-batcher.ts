/**
 * Commits finished performs in groups: every perform finished while the
 * previous group was being made durable goes into the next one, one journal
 * record (one JetStream message) and one SQLite transaction. When a group fails,
 * each perform is committed alone, so one bad perform cannot hold back the
 * others; the ones that still fail are handed back to the runtime.
 * A commit that cannot be stored now (a full disk, JetStream unavailable) is no
 * fault of its perform: it goes back apart (noRoom), logged once until a commit
 * succeeds again, not once per perform per retry. A fenced journal commits nothing
 * more: its performs stay as they are (the node is about to stop).
 */
import type { DurableStore } from "../durable/durable-store";
import { FencedError, isRetryLater } from "../durable/journal";
import { type Commit, isDiskFull, type StoredMessage } from "../store/store";
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
	durable: DurableStore;
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
	/** A group is being made durable: performs finishing meanwhile wait for the next group. */
	private flushing = false;
	private inFlight = 0;
	/** The last commit could not be stored (and that was logged). */
	private noRoomLogged = false;

	constructor(options: CommitBatcherOptions) {
		this.options = options;
	}

	/** Performs waiting for their commit, or being committed. */
	get pending(): number {
		return this.queue.length + this.inFlight;
	}

	add(f: Finished): void {
		this.queue.push(f);
		this.schedule();
	}

	private schedule(): void {
		if (this.scheduled || this.flushing) return;
		this.scheduled = true;
		setImmediate(() => void this.flush());
	}

	/** Commits every queued perform as one group, then lets their actors go on. */
	private async flush(): Promise<void> {
		this.scheduled = false;
		const batch = this.queue;
		if (batch.length === 0) return;
		this.queue = [];
		this.flushing = true;
		this.inFlight = batch.length;
		try {
			await this.commitGroup(batch);
		} finally {
			this.flushing = false;
			this.inFlight = 0;
			if (this.queue.length > 0) this.schedule();
		}
	}

	private async commitGroup(batch: Finished[]): Promise<void> {
		try {
			await this.options.durable.commit(merge(batch));
		} catch (err) {
			if (err instanceof FencedError) return;
			if (isRetryLater(err)) this.noteNoRoom(err as Error);
			else this.options.logger?.error(`commit of ${batch.length} performs failed: ${(err as Error).message}`);
			if (batch.length === 1 && isRetryLater(err)) this.options.noRoom(batch[0]);
			else await this.commitOneByOne(batch);
			return;
		}
		this.noteRoom();
		this.committedAll(batch);
	}

	private committedAll(batch: Finished[]): void {
		const { performLog, committed } = this.options;
		const ended = performLog ? performLog.now() : 0;
		for (const f of batch) {
			if (performLog && f.rows.length > 0) performLog.record(f.actor.id, f.started, ended, f.rows.length);
			committed(f);
		}
		performLog?.flush();
	}

	private async commitOneByOne(batch: Finished[]): Promise<void> {
		const ok: Finished[] = [];
		for (const f of batch) {
			try {
				await this.options.durable.commit(f.commit);
				ok.push(f);
			} catch (err) {
				if (err instanceof FencedError) return;
				if (isRetryLater(err)) this.options.noRoom(f);
				else this.options.rejected(f, err instanceof Error ? err : new Error(String(err)));
			}
		}
		if (ok.length > 0) this.noteRoom();
		this.committedAll(ok);
	}

	private noteNoRoom(err: Error): void {
		if (this.noRoomLogged) return;
		this.noRoomLogged = true;
		const cause = isDiskFull(err) ? `disk full: ${this.options.durable.store.file} has no room to commit performs (SQLITE_FULL)` : err.message;
		this.options.logger?.error(`${cause}; their messages stay pending and are performed again, with no attempt counted, until they can commit`);
	}

	private noteRoom(): void {
		if (!this.noRoomLogged) return;
		this.noRoomLogged = false;
		this.options.logger?.info("performs commit again");
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
