/**
 * The node's working store: one SQLite file (WAL) per node, read by the actors.
 *
 * It changes only by applying journal records (applyAll), each in one
 * transaction with the others of its group: the journal makes a record durable
 * first (lib/durable), so the store never holds what the journal does not. The
 * apply methods (append, receive, commit, forget, published, requeue, prune) are
 * what applyAll runs; only the journal and tests call them directly.
 */
import Database = require("better-sqlite3");
import { randomUUID } from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { Forgotten } from "../durable/records";
import type { Positioned } from "../durable/journal";
import { OutboxClaims } from "./outbox-claims";
import {
	type ActorRow,
	type DeadRow,
	type MessageRow,
	type OutboxRow,
	parseHeaders,
	toActor,
	toMessage,
	toOutboxEntry,
	toShippedDead,
	toShippedMessage,
	toShippedOutbox,
} from "./rows";
import { openSnapshotReader, readSnapshotPart, type SnapshotReader } from "./snapshot";
import { SCHEMA, SCHEMA_VERSION, migrate } from "./schema";
import { prepareStatements, type Statements } from "./statements";
import {
	type ActorRecord,
	type Commit,
	type DeadMessage,
	emptyShipment,
	type NewMessage,
	type OutboxEntry,
	type ProcessedRecord,
	type Shipment,
	type StoredMessage,
} from "./types";

export * from "./types";

export interface StoreOptions {
	dedupeWindowMs?: number;
	/**
	 * SQLite synchronous pragma: FULL survives power loss, NORMAL survives a killed process, OFF
	 * too but may leave a corrupt file after power loss (for a file that is never read after a crash).
	 */
	synchronous?: "FULL" | "NORMAL" | "OFF";
}

type StoredListener = (rows: StoredMessage[]) => void;

/** SQLite could not grow the store (SQLITE_FULL): the disk, or the database's page limit, is full. */
export function isDiskFull(err: unknown): boolean {
	return typeof err === "object" && err !== null && (err as { code?: unknown }).code === "SQLITE_FULL";
}

/** Keys per IN (...) query: json_each keeps one prepared statement for any count. */
const KEYS_PER_QUERY = 500;
/** Stamps are epoch * 2^21 + a count within the epoch (lib/durable/stamps.ts). */
export const STAMPS_PER_EPOCH = 2 ** 21;

export class Store {
	readonly file: string;
	private readonly db: Database.Database;
	private readonly dedupeWindowMs: number;
	private readonly listeners: StoredListener[] = [];
	private readonly outboxListeners: (() => void)[] = [];
	private readonly outboxSettledListeners: (() => void)[] = [];
	private readonly claims = new OutboxClaims();
	/** The relay's place in the outbox: rows up to this seq were taken (rows given back move it back). */
	private outboxCursor = 0;
	private lastStamp = 0;
	private pending: number;
	/**
	 * The in-memory effects (counters, then listeners) of the transaction running now: they are
	 * made once it commits, so a group of records that rolls back leaves them as they were.
	 */
	private effects: { bookkeeping: (() => void)[]; notices: (() => void)[] } | null = null;
	/** Rows stored by append (ingest, actions) and by receive (handoff), and ids dropped as duplicates, since open. */
	readonly counts = { appended: 0, received: 0, duplicates: 0 };
	private readonly sql: Statements;

	constructor(file: string, options: StoreOptions = {}) {
		this.file = file;
		if (file !== ":memory:") fs.mkdirSync(path.dirname(file), { recursive: true });
		this.db = new Database(file);
		this.db.pragma("journal_mode = WAL");
		this.db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
		this.db.pragma("busy_timeout = 5000");
		// Checkpoints every 64 MiB of WAL, not SQLite's 4 MiB: a page rewritten many times (the tail of
		// a table, a hot index page) is copied and synced once, and the syncs compete less with the
		// broker's own (bench:ingest (b3) ran 5% faster). The WAL shrinks back to that size once reset,
		// also after a snapshot reader held it (lib/store/snapshot.ts).
		this.db.pragma("wal_autocheckpoint = 16384");
		this.db.pragma("journal_size_limit = 67108864");
		this.checkVersion();
		this.dedupeWindowMs = options.dedupeWindowMs ?? 3_600_000;
		this.sql = prepareStatements(this.db);
		this.pending = (this.sql.countPending.get() as { n: number }).n;
		this.lastStamp = Math.max((this.sql.maxStamp.get() as { s: number | null }).s ?? 0, Number(this.meta("stamp") ?? 0));
	}

	/** The store of one node: <dir>/<nodeID>.sqlite. */
	static open(dir: string, nodeID: string, options?: StoreOptions): Store {
		return new Store(path.join(dir, `${nodeID}.sqlite`), options);
	}

	/** Deletes the store file of a node (and its WAL): its content is durable elsewhere. */
	static remove(dir: string, nodeID: string): void {
		const file = path.join(dir, `${nodeID}.sqlite`);
		for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(file + suffix, { force: true });
	}

	private checkVersion(): void {
		const found = this.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'meta'").get();
		const row = found ? (this.db.prepare("SELECT value FROM meta WHERE name = 'schema'").get() as { value: string } | undefined) : undefined;
		if (row && Number(row.value) !== SCHEMA_VERSION && !migrate(this.db, Number(row.value))) {
			throw new Error(
				`${this.file} has schema version ${row.value}; this keyhive reads version ${SCHEMA_VERSION}. ` +
					`Drain it with the keyhive that wrote it (stop that node gracefully), or move the file away to start empty.`,
			);
		}
		this.db.exec(SCHEMA);
		this.db.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
	}

	/** How far commits are synced to the disk from now on (see StoreOptions.synchronous). */
	setSynchronous(mode: NonNullable<StoreOptions["synchronous"]>): void {
		this.db.pragma(`synchronous = ${mode}`);
	}

	meta(name: string): string | undefined {
		return this.sql.getMeta.get(name) as string | undefined;
	}

	setMeta(name: string, value: string): void {
		this.sql.setMeta.run(name, value);
	}

	/** Whether the store holds nothing at all for any key. */
	get isEmpty(): boolean {
		return this.keysHeld().length === 0;
	}

	/**
	 * Called after every apply that adds pending rows (append, receive, requeue),
	 * inside the call that stored them: a listener must only schedule work, so
	 * that the caller (ingest) acks in the same turn as its commit.
	 */
	onStored(listener: StoredListener): void {
		this.listeners.push(listener);
	}

	/** Rows waiting to be performed or shipped. */
	get pendingCount(): number {
		return this.pending;
	}

	/** The newest stamp this store holds or held: its epoch is the latest inbox consumer it has heard of. */
	get newestStamp(): number {
		return this.lastStamp;
	}

	// ---- applying journal records -----------------------------------------

	/**
	 * Applies records in one transaction, in order; each record's result in its place. Counters
	 * and listeners hear of the group once it committed: a group that fails changes nothing,
	 * in the file or in memory, and leaves the journal position where it was.
	 */
	applyAll(entries: readonly Positioned[]): unknown[] {
		return this.transact(() => {
			const last = entries[entries.length - 1]?.seq ?? 0;
			if (last > Number(this.meta("journal") ?? 0)) this.setMeta("journal", String(last));
			return entries.map((entry) => this.apply(entry));
		});
	}

	/**
	 * Runs work in a transaction (a savepoint inside another one). The effects it registers with
	 * after() are made when the outermost transaction commits, counters first, then listeners;
	 * when work throws they are dropped and the newest stamp goes back to where it was.
	 */
	private transact<T>(work: () => T): T {
		const outer = this.effects;
		const effects = outer ?? { bookkeeping: [], notices: [] };
		const marks = [effects.bookkeeping.length, effects.notices.length];
		const lastStamp = this.lastStamp;
		this.effects = effects;
		let result: T;
		try {
			result = this.db.transaction(work)();
		} catch (err) {
			effects.bookkeeping.length = marks[0];
			effects.notices.length = marks[1];
			this.lastStamp = lastStamp;
			throw err;
		} finally {
			this.effects = outer;
		}
		if (outer === null) {
			for (const effect of effects.bookkeeping) effect();
			for (const notice of effects.notices) notice();
		}
		return result;
	}

	/** Inside transact(): what to change in memory, and whom to tell, once the transaction commits. */
	private after(bookkeeping: (() => void) | null, notice?: () => void): void {
		if (!this.effects) throw new Error("Store.after() outside a transaction");
		if (bookkeeping) this.effects.bookkeeping.push(bookkeeping);
		if (notice) this.effects.notices.push(notice);
	}

	private apply({ record, seq }: Positioned): unknown {
		switch (record.t) {
			case "append":
				return this.append(record.rows);
			case "receive":
				return this.receive(record.shipment);
			case "commit":
				return this.commit(record.commit, seq, record.at);
			case "forget":
				return this.forget(record.forgotten);
			case "published":
				return this.published(record.uids);
			case "requeue":
				return this.requeue(record.dead);
			case "prune":
				return this.prune(record.before);
			// A snapshot equals what the writer's store holds already; a reader of the journal builds a new store from it (lib/durable/replay.ts).
			case "snapshot":
			case "open":
			case "epoch":
			case "seal":
				return seq;
		}
	}

	private insertAll(messages: Iterable<NewMessage>, now: number): { stored: StoredMessage[]; duplicates: number } {
		const stored: StoredMessage[] = [];
		let duplicates = 0;
		for (const m of messages) {
			if (this.sql.isProcessed.get(m.id)) {
				duplicates++;
				continue;
			}
			const row = {
				id: m.id,
				key: m.key,
				stamp: m.stamp ?? this.lastStamp + 1,
				payload: m.payload,
				headers: m.headers ? JSON.stringify(m.headers) : null,
				receivedAt: m.receivedAt ?? now,
				attempts: m.attempts ?? 0,
			};
			const result = this.sql.insertMessage.run(row);
			if (result.changes === 0) {
				duplicates++;
				continue;
			}
			if (row.stamp > this.lastStamp) this.lastStamp = row.stamp;
			stored.push({ ...row, seq: Number(result.lastInsertRowid), headers: m.headers ?? null });
		}
		// Rows leave the table, so the newest stamp is kept apart: it never goes back after a restart.
		if (stored.length > 0) this.setMeta("stamp", String(this.lastStamp));
		return { stored, duplicates };
	}

	private announce(rows: StoredMessage[]): void {
		if (rows.length === 0) return;
		for (const listener of this.listeners) listener(rows);
	}

	/** Appends messages. An id already pending or already processed here is skipped and counted as a duplicate. */
	append(messages: NewMessage[]): { stored: StoredMessage[]; duplicates: number } {
		const now = Date.now();
		return this.transact(() => {
			const result = this.insertAll(messages, now);
			this.after(
				() => {
					this.pending += result.stored.length;
					this.counts.appended += result.stored.length;
					this.counts.duplicates += result.duplicates;
				},
				() => this.announce(result.stored),
			);
			return result;
		});
	}

	/**
	 * Takes a shipment (or a snapshot part). Messages whose id was processed (here, or by the
	 * sender per its processed list) are dropped; an actor record older than the one held is ignored.
	 */
	receive(shipment: Shipment): { stored: StoredMessage[]; duplicates: number } {
		return this.transact(() => {
			let dropped = 0;
			let results = 0;
			for (const p of shipment.processed) {
				this.sql.rememberId.run(p.id, p.key, p.at);
				// A copy still pending here (a lost node's leftovers) was performed elsewhere already.
				dropped += this.sql.deleteMessageById.run(p.id).changes;
			}
			for (const a of shipment.actors) this.saveActor(a, a.version ?? 0);
			// A shipment sent again (its reply was lost) stores its results and dead letters once.
			for (const o of shipment.outbox ?? []) {
				results += this.sql.insertOutbox.run(o.uid, o.key, o.body, o.headers ? JSON.stringify(o.headers) : null, o.createdAt).changes;
			}
			for (const d of shipment.dead ?? []) this.sql.insertDead.run({ ...d, headers: d.headers ? JSON.stringify(d.headers) : null });
			const { stored, duplicates } = this.insertAll(shipment.messages, Date.now());
			this.after(
				() => {
					this.pending += stored.length - dropped;
					this.counts.received += stored.length;
					this.counts.duplicates += duplicates + dropped;
				},
				() => {
					this.announce(stored);
					if (results > 0) this.outboxChanged();
				},
			);
			return { stored, duplicates };
		});
	}

	/** Commits what a group of performs did, all or nothing; version is the journal position of the commit. */
	commit(work: Commit, version = 0, now = Date.now()): void {
		this.transact(() => {
			let removed = 0;
			for (const d of work.done ?? []) {
				removed += this.sql.deleteMessageById.run(d.id).changes;
				this.sql.rememberId.run(d.id, d.key, now);
			}
			for (const id of work.failed ?? []) this.sql.bumpAttempts.run(id);
			for (const d of work.dead ?? []) {
				this.sql.toDead.run(d.reason, now, d.id);
				removed += this.sql.deleteMessageById.run(d.id).changes;
			}
			for (const a of work.actors ?? []) this.saveActor(a, version);
			for (const o of work.outbox ?? []) {
				this.sql.insertOutbox.run(o.uid ?? randomUUID(), o.key, o.body, o.headers ? JSON.stringify(o.headers) : null, now);
			}
			this.after(
				() => {
					this.pending -= removed;
				},
				work.outbox && work.outbox.length > 0 ? () => this.outboxChanged() : undefined,
			);
		});
	}

	/** Inside a transaction: the actor's record as given (a tombstone when deleted), unless a later one is held. */
	private saveActor(a: ActorRecord, version: number): void {
		this.sql.upsertActor.run(a.id, a.payload === undefined ? null : JSON.stringify(a.payload), a.timeout, a.deleted ? 1 : 0, version);
	}

	/** Deletes what a shipment's receiver has committed. */
	forget(forgotten: Forgotten): void {
		this.transact(() => {
			let removed = 0;
			for (const id of forgotten.messages) removed += this.sql.deleteMessageById.run(id).changes;
			for (const a of forgotten.actors) this.sql.deleteActor.run(a.id, a.version);
			for (const id of forgotten.processed) this.sql.forgetProcessed.run(id);
			for (const uid of forgotten.outbox) this.sql.deleteOutboxByUid.run(uid);
			for (const d of forgotten.dead) this.sql.deleteDeadLetter.run(d.id, d.diedAt);
			this.after(() => {
				for (const uid of forgotten.outbox) this.claims.settleShipment(uid);
				this.pending -= removed;
			});
		});
	}

	/** Removes results the broker has confirmed. */
	published(uids: string[]): void {
		this.transact(() => {
			for (const uid of uids) this.sql.deleteOutboxByUid.run(uid);
		});
	}

	/** Moves dead letters back to pending with the stamps given (they go last). One processed since is dropped. */
	requeue(dead: { id: string; diedAt: number; stamp: number }[]): { requeued: StoredMessage[]; dropped: number } {
		return this.transact(() => {
			const back: NewMessage[] = [];
			for (const d of dead) {
				const row = this.sql.deadLetter.get(d.id, d.diedAt) as DeadRow | undefined;
				if (!row) continue;
				this.sql.deleteDeadLetter.run(d.id, d.diedAt);
				back.push({ id: row.id, key: row.key, payload: row.payload, headers: parseHeaders(row.headers), receivedAt: row.received_at, stamp: d.stamp });
			}
			const { stored, duplicates } = this.insertAll(back, Date.now());
			this.after(
				() => {
					this.pending += stored.length;
				},
				() => this.announce(stored),
			);
			return { requeued: stored, dropped: duplicates };
		});
	}

	/** Forgets processed ids remembered before `before`; returns how many. */
	prune(before: number): number {
		return this.sql.pruneProcessed.run(before).changes;
	}

	/** Where processed ids older than the dedupe window end. */
	pruneHorizon(now = Date.now()): number {
		return now - this.dedupeWindowMs;
	}

	// ---- reading --------------------------------------------------------------

	/** Called after an apply that wrote outbox entries, and when entries are given back to the relay. */
	onOutbox(listener: () => void): void {
		this.outboxListeners.push(listener);
	}

	/** Called when results the relay had published were confirmed or given back: they may move now. */
	onOutboxSettled(listener: () => void): void {
		this.outboxSettledListeners.push(listener);
	}

	private outboxChanged(): void {
		for (const listener of this.outboxListeners) listener();
	}

	/** Pending rows after seq, in arrival order. */
	scan(afterSeq: number, limit: number): StoredMessage[] {
		return (this.sql.scan.all(afterSeq, limit) as MessageRow[]).map(toMessage);
	}

	/** Pending rows of one key, oldest first. */
	messagesOf(key: string): StoredMessage[] {
		return (this.sql.messagesOfKey.all(key) as MessageRow[]).map(toMessage);
	}

	/** Every key this store holds anything for: messages, actor state, processed ids, results, dead letters. */
	keysHeld(): string[] {
		return this.sql.keysHeld.all() as string[];
	}

	/**
	 * Everything held for these keys, messages oldest first per key. Results the relay has
	 * published and awaits confirms for stay out; the results taken are not published until
	 * forget() or release() of this shipment.
	 */
	shipmentOf(keys: string[]): Required<Omit<Shipment, "routed">> {
		const shipment = emptyShipment();
		for (let i = 0; i < keys.length; i += KEYS_PER_QUERY) {
			const chunk = JSON.stringify(keys.slice(i, i + KEYS_PER_QUERY));
			for (const row of this.sql.messagesOfKeys.all(chunk) as MessageRow[]) shipment.messages.push(toShippedMessage(row));
			for (const row of this.sql.actorsOfKeys.all(chunk) as ActorRow[]) shipment.actors.push(toActor(row));
			for (const row of this.sql.processedOfKeys.all(chunk) as ProcessedRecord[]) shipment.processed.push(row);
			for (const row of this.sql.outboxOfKeys.all(chunk) as OutboxRow[]) {
				if (this.claims.isClaimed(row.seq, row.uid)) continue;
				this.claims.claimForShipment(row.uid, row.seq);
				shipment.outbox.push(toShippedOutbox(row));
			}
			for (const row of this.sql.deadOfKeys.all(chunk) as DeadRow[]) shipment.dead.push(toShippedDead(row));
		}
		return shipment;
	}

	/** The next part of everything held, after cursor (null to begin); null when all was read. Nothing may write meanwhile (see openSnapshot). */
	snapshotPart(cursor: string | null, maxBytes: number): { part: Shipment; cursor: string } | null {
		return readSnapshotPart(this.sql.snapshot, cursor, maxBytes);
	}

	/** Everything held as it is now, in parts of about partBytes, read while the store goes on changing. */
	openSnapshot(partBytes: number): SnapshotReader {
		return openSnapshotReader(this.file, this.sql.snapshot, partBytes);
	}

	/** What the sender deletes once a shipment is committed by its receiver. */
	static forgottenOf(shipment: Shipment): Forgotten {
		return {
			messages: shipment.messages.map((m) => m.id),
			actors: shipment.actors.map((a) => ({ id: a.id, version: a.version ?? 0 })),
			processed: shipment.processed.map((p) => p.id),
			outbox: (shipment.outbox ?? []).map((o) => o.uid),
			dead: (shipment.dead ?? []).map((d) => ({ id: d.id, diedAt: d.diedAt })),
		};
	}

	/** A shipment that did not go (or its unsent part): its results may be published here again. */
	release(shipment: Shipment): void {
		let released = false;
		for (const o of shipment.outbox ?? []) {
			const seq = this.claims.settleShipment(o.uid);
			if (seq === undefined) continue;
			this.outboxCursor = Math.min(this.outboxCursor, seq - 1);
			released = true;
		}
		if (released) this.outboxChanged();
	}

	/** Whether the relay awaits the broker's confirm for a result of this key (it is not shipped meanwhile). */
	resultsInFlight(key: string): boolean {
		return this.claims.relayHolds(key);
	}

	actor(id: string): ActorRecord | undefined {
		const row = this.sql.actor.get(id) as ActorRow | undefined;
		return row ? toActor(row) : undefined;
	}

	/** Every stored actor record (state that differs from the specs, and tombstones). */
	*actors(): IterableIterator<ActorRecord> {
		for (const row of this.sql.allActors.iterate() as IterableIterator<ActorRow>) yield toActor(row);
	}

	/** Outbox entries after seq (oldest first), to look at: the relay takes them with takeOutbox(). */
	outbox(limit: number, afterSeq = 0): OutboxEntry[] {
		return (this.sql.outboxBatch.all(afterSeq, limit) as OutboxRow[]).map(toOutboxEntry);
	}

	/**
	 * The next outbox entries for the relay to publish, oldest first, skipping those in a
	 * shipment. They count as in flight (never shipped) until settleSent() or giveBack().
	 */
	takeOutbox(limit: number): OutboxEntry[] {
		for (;;) {
			const rows = this.sql.outboxBatch.all(this.outboxCursor, limit) as OutboxRow[];
			if (rows.length === 0) return [];
			this.outboxCursor = rows[rows.length - 1].seq;
			const taken: OutboxEntry[] = [];
			for (const row of rows) {
				if (this.claims.isClaimed(row.seq, row.uid)) continue;
				this.claims.claimForRelay(row.seq, row.key);
				taken.push(toOutboxEntry(row));
			}
			if (taken.length > 0) return taken;
		}
	}

	/** Entries taken but not confirmed (the channel died): they are taken again, or shipped, later. */
	giveBack(seqs: number[]): void {
		for (const seq of seqs) {
			if (!this.claims.settleRelay(seq)) continue;
			this.outboxCursor = Math.min(this.outboxCursor, seq - 1);
		}
		for (const listener of this.outboxSettledListeners) listener();
	}

	/** Entries the relay is done with: confirmed, and deleted by a published record. */
	settleSent(seqs: number[]): void {
		for (const seq of seqs) this.claims.settleRelay(seq);
		for (const listener of this.outboxSettledListeners) listener();
	}

	get outboxCount(): number {
		return this.sql.outboxCount.get() as number;
	}

	get deadCount(): number {
		return this.sql.deadCount.get() as number;
	}

	get processedCount(): number {
		return this.sql.processedCount.get() as number;
	}

	get actorRecordCount(): number {
		return this.sql.actorRowCount.get() as number;
	}

	dead(limit: number): DeadMessage[] {
		return (this.sql.deadList.all(limit) as DeadRow[]).map((row) => ({ ...toMessage(row), reason: row.reason, diedAt: row.died_at }));
	}

	close(): void {
		if (this.db.open) this.db.close();
	}
}
