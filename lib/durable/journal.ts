/**
 * The journal: every transaction is made durable here first, then applied to
 * the node's SQLite store, so the store never holds what the journal does not.
 *
 * Two kinds: LocalJournal (a node without a transporter: SQLite itself is the
 * durable copy) and JetStreamJournal (one subject per node instance in one
 * JetStream stream, every write fenced by the subject's last sequence).
 */
import type { SnapshotReader } from "../store/snapshot";
import type { JournalRecord } from "./records";

/** A record and the journal position it was stored at (the JetStream stream sequence, or a local counter). */
export interface Positioned {
	record: JournalRecord;
	seq: number;
}

/** Where a journal applies what it made durable, and reads snapshots from. */
export interface JournalTarget {
	/** Applies records in one SQLite transaction, in order; returns each record's result. Throws SQLITE_FULL when there is no room. */
	applyAll(entries: readonly Positioned[]): unknown[];
	/**
	 * The whole store as it is now, in parts of about partBytes, read while writes go on.
	 * Opened between two writes, so it equals the journal up to the last one applied.
	 */
	openSnapshot(partBytes: number): SnapshotReader;
}

export interface Journal {
	/** This node instance's id: a fresh one at every start (null for the local journal). */
	readonly instance: string | null;
	/** Makes the record durable, applies it, and resolves with what applying it returned. */
	write(record: JournalRecord): Promise<unknown>;
	/** A position later than every position taken before it anywhere in the cluster (orders inbox consumers). */
	epoch(): Promise<number>;
	/** Resolves when every write made before this call is applied or failed. */
	idle(): Promise<void>;
	/**
	 * Resolves if this instance still owns its log: at once when a write or check proved it within
	 * the lease, else after asking JetStream. Throws FencedError when it was taken over. Called
	 * before an effect outside the journal (a result published), so a node that stalled past
	 * the heartbeat timeout finds out before it acts, not after.
	 */
	confirmOwner(): Promise<void>;
	/**
	 * While held (a view changing), no snapshot starts unless the log grew to twice the size at
	 * which one is due: a snapshot's parts ride along with the writes and slow a handoff's.
	 */
	holdSnapshots(hold: boolean): void;
	/** Called once when another node took this instance's log over: nothing more commits. */
	onFenced(listener: (reason: string) => void): void;
	/** Deletes this instance's log: everything it held was handed off. */
	retire(): Promise<void>;
	close(): Promise<void>;
}

/** Another node sealed this instance's log: this node's writes are refused from now on. */
export class FencedError extends Error {
	constructor(instance: string, detail: string) {
		super(`instance ${instance} was taken over by another node (${detail}); it commits nothing more`);
		this.name = "FencedError";
	}
}

/**
 * The journal cannot store now (NATS unreachable, no JetStream quorum, storage full):
 * nothing of the write was stored, and it may be tried again later.
 */
export class JournalUnavailableError extends Error {
	constructor(reason: string) {
		super(`JetStream cannot store now: ${reason}`);
		this.name = "JournalUnavailableError";
	}
}

/** A write that fails for want of room (SQLite full, JetStream storage full) or a journal that is unavailable: no attempt counts, try later. */
export function isRetryLater(err: unknown): boolean {
	return err instanceof JournalUnavailableError || (typeof err === "object" && err !== null && (err as { code?: unknown }).code === "SQLITE_FULL");
}
