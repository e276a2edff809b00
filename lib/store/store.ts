/**
 * The node-local store: one SQLite file (WAL) per node.
 *
 * Every write that must be atomic with another is one transaction here:
 * append + dedupe, a perform's delete + remember-id + actor state + outbox,
 * a received shipment, and forgetting what the owner has committed.
 */
import Database = require("better-sqlite3");
import { randomUUID } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { SCHEMA, SCHEMA_VERSION } from "./schema";

export type Headers = Record<string, string | number | boolean>;

/** A message entering keyhive. stamp, when given, is kept (shipped rows keep their order). */
export interface NewMessage {
	id: string;
	key: string;
	payload: string;
	headers?: Headers | null;
	stamp?: number;
	receivedAt?: number;
	attempts?: number;
}

export interface StoredMessage {
	seq: number;
	id: string;
	key: string;
	stamp: number;
	payload: string;
	headers: Headers | null;
	receivedAt: number;
	attempts: number;
}

export interface ActorRecord {
	id: string;
	payload: unknown;
	timeout: number;
	deleted: boolean;
}

export interface ProcessedRecord {
	id: string;
	key: string;
	at: number;
}

export interface DeadMessage extends StoredMessage {
	reason: string;
	diedAt: number;
}

/** A result not yet confirmed by the broker, as it moves with its key (seq is each store's own). */
export interface ShippedResult {
	uid: string;
	key: string;
	body: string;
	headers: Headers | null;
	createdAt: number;
}

/** What moves with a set of keys from one node to another. */
export interface Shipment {
	messages: Omit<StoredMessage, "seq">[];
	actors: ActorRecord[];
	processed: ProcessedRecord[];
	/** Results not yet published; absent from senders that predate moving them. */
	outbox?: ShippedResult[];
	/** Dead letters, waiting for a requeue on the key's owner. */
	dead?: Omit<DeadMessage, "seq">[];
}

export interface OutboxEntry {
	seq: number;
	key: string;
	body: string;
	headers: Headers | null;
}

/** Everything one group of finished performs changes, committed at once. */
export interface Commit {
	/** Performed messages: deleted, and their ids remembered. */
	done?: { seq: number; id: string; key: string }[];
	/** Failed once more: their attempts column goes up by one. */
	failed?: number[];
	/** Failed for the last time: moved to the dead table with the reason. */
	dead?: { seq: number; reason: string }[];
	actors?: ActorRecord[];
	/** Results, each with the key whose perform made it (it moves with that key until published). */
	outbox?: { key: string; body: string; headers?: Headers | null }[];
}

export interface StoreOptions {
	dedupeWindowMs?: number;
	/** SQLite synchronous pragma: FULL survives power loss, NORMAL survives a killed process. */
	synchronous?: "FULL" | "NORMAL";
}

type StoredListener = (rows: StoredMessage[]) => void;

interface MessageRow {
	seq: number;
	id: string;
	key: string;
	stamp: number;
	payload: string;
	headers: string | null;
	received_at: number;
	attempts: number;
}

function toMessage(row: MessageRow): StoredMessage {
	return {
		seq: row.seq,
		id: row.id,
		key: row.key,
		stamp: row.stamp,
		payload: row.payload,
		headers: row.headers === null ? null : (JSON.parse(row.headers) as Headers),
		receivedAt: row.received_at,
		attempts: row.attempts,
	};
}

interface OutboxRow {
	seq: number;
	uid: string;
	key: string;
	body: string;
	headers: string | null;
	created_at: number;
}

function toOutboxEntry(row: OutboxRow): OutboxEntry {
	return { seq: row.seq, key: row.key, body: row.body, headers: row.headers === null ? null : (JSON.parse(row.headers) as Headers) };
}

function toActor(row: { id: string; payload: string | null; timeout: number; deleted: number }): ActorRecord {
	return {
		id: row.id,
		payload: row.payload === null ? null : JSON.parse(row.payload),
		timeout: row.timeout,
		deleted: row.deleted === 1,
	};
}

/** SQLite could not grow the store (SQLITE_FULL): the disk, or the database's page limit, is full. */
export function isDiskFull(err: unknown): boolean {
	return typeof err === "object" && err !== null && (err as { code?: unknown }).code === "SQLITE_FULL";
}

/** Keys per IN (...) query: json_each keeps one prepared statement for any count. */
const KEYS_PER_QUERY = 500;

export class Store {
	readonly file: string;
	private readonly db: Database.Database;
	private readonly dedupeWindowMs: number;
	private readonly listeners: StoredListener[] = [];
	private readonly outboxListeners: (() => void)[] = [];
	private readonly outboxSettledListeners: (() => void)[] = [];
	/**
	 * Outbox rows are taken by one side at a time, so a result is never both published here and
	 * moved away: rows the relay published and awaits confirms for (seq → key) are not shipped,
	 * rows in a shipment the receiver has not committed yet (uid → seq) are not published.
	 */
	private readonly sending = new Map<number, string>();
	private readonly sendingPerKey = new Map<string, number>();
	private readonly shipping = new Map<string, number>();
	/** The relay's place in the outbox: rows up to this seq were taken (rows given back move it back). */
	private outboxCursor = 0;
	private lastStamp = 0;
	private pending: number;
	/** Rows stored by append (ingest, actions) and by receive (handoff), and ids dropped as duplicates, since open. */
	readonly counts = { appended: 0, received: 0, duplicates: 0 };
	private readonly sql: ReturnType<Store["prepare"]>;

	constructor(file: string, options: StoreOptions = {}) {
		this.file = file;
		if (file !== ":memory:") fs.mkdirSync(path.dirname(file), { recursive: true });
		this.db = new Database(file);
		this.db.pragma("journal_mode = WAL");
		this.db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
		this.db.pragma("busy_timeout = 5000");
		this.db.exec(SCHEMA);
		this.checkVersion();
		this.dedupeWindowMs = options.dedupeWindowMs ?? 3_600_000;
		this.sql = this.prepare();
		this.pending = (this.sql.countPending.get() as { n: number }).n;
		const saved = this.sql.savedStamp.get() as string | undefined;
		this.lastStamp = Math.max((this.sql.maxStamp.get() as { s: number | null }).s ?? 0, saved ? Number(saved) : 0);
	}

	/** The store of one node: <dir>/<nodeID>.sqlite. */
	static open(dir: string, nodeID: string, options?: StoreOptions): Store {
		return new Store(path.join(dir, `${nodeID}.sqlite`), options);
	}

	private checkVersion(): void {
		const row = this.db.prepare("SELECT value FROM meta WHERE name = 'schema'").get() as { value: string } | undefined;
		if (!row) {
			this.db.prepare("INSERT INTO meta (name, value) VALUES ('schema', ?)").run(String(SCHEMA_VERSION));
		} else if (Number(row.value) !== SCHEMA_VERSION) {
			throw new Error(
				`${this.file} has schema version ${row.value}; this keyhive reads version ${SCHEMA_VERSION}. ` +
					`Drain it with the keyhive that wrote it (stop that node gracefully), or move the file away to start empty.`,
			);
		}
	}

	private prepare() {
		const db = this.db;
		return {
			countPending: db.prepare("SELECT count(*) AS n FROM messages"),
			maxStamp: db.prepare("SELECT max(stamp) AS s FROM messages"),
			savedStamp: db.prepare("SELECT value FROM meta WHERE name = 'stamp'").pluck(),
			saveStamp: db.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES ('stamp', ?)"),
			isProcessed: db.prepare("SELECT 1 FROM processed WHERE id = ?").pluck(),
			insertMessage: db.prepare(
				`INSERT INTO messages (id, key, stamp, payload, headers, received_at, attempts)
				 VALUES (@id, @key, @stamp, @payload, @headers, @receivedAt, @attempts) ON CONFLICT(id) DO NOTHING`,
			),
			deleteMessage: db.prepare("DELETE FROM messages WHERE seq = ?"),
			deleteMessageById: db.prepare("DELETE FROM messages WHERE id = ?"),
			rememberId: db.prepare("INSERT OR IGNORE INTO processed (id, key, at) VALUES (?, ?, ?)"),
			forgetProcessed: db.prepare("DELETE FROM processed WHERE id = ?"),
			bumpAttempts: db.prepare("UPDATE messages SET attempts = attempts + 1 WHERE seq = ?"),
			toDead: db.prepare(
				`INSERT INTO dead (id, key, stamp, payload, headers, received_at, attempts, reason, died_at)
				 SELECT id, key, stamp, payload, headers, received_at, attempts + 1, ?, ? FROM messages WHERE seq = ?`,
			),
			upsertActor: db.prepare("INSERT OR REPLACE INTO actors (id, payload, timeout, deleted) VALUES (?, ?, ?, ?)"),
			deleteActor: db.prepare("DELETE FROM actors WHERE id = ?"),
			actor: db.prepare("SELECT id, payload, timeout, deleted FROM actors WHERE id = ?"),
			allActors: db.prepare("SELECT id, payload, timeout, deleted FROM actors"),
			insertOutbox: db.prepare("INSERT INTO outbox (uid, key, body, headers, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(uid) DO NOTHING"),
			outboxBatch: db.prepare("SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?"),
			outboxCount: db.prepare("SELECT count(*) AS n FROM outbox").pluck(),
			deleteOutbox: db.prepare("DELETE FROM outbox WHERE seq = ?"),
			deleteOutboxByUid: db.prepare("DELETE FROM outbox WHERE uid = ?"),
			scan: db.prepare("SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?"),
			messagesOfKeys: db.prepare("SELECT * FROM messages WHERE key IN (SELECT value FROM json_each(?)) ORDER BY key, stamp"),
			messagesOfKey: db.prepare("SELECT * FROM messages WHERE key = ? ORDER BY stamp"),
			actorsOfKeys: db.prepare("SELECT id, payload, timeout, deleted FROM actors WHERE id IN (SELECT value FROM json_each(?))"),
			processedOfKeys: db.prepare("SELECT id, key, at FROM processed WHERE key IN (SELECT value FROM json_each(?))"),
			outboxOfKeys: db.prepare("SELECT * FROM outbox WHERE key IN (SELECT value FROM json_each(?)) ORDER BY seq"),
			deadOfKeys: db.prepare("SELECT * FROM dead WHERE key IN (SELECT value FROM json_each(?)) ORDER BY seq"),
			keysHeld: db
				.prepare(
					`SELECT key FROM messages UNION SELECT id FROM actors UNION SELECT key FROM processed
				 UNION SELECT key FROM outbox UNION SELECT key FROM dead`,
				)
				.pluck(),
			pruneProcessed: db.prepare("DELETE FROM processed WHERE at < ?"),
			deadCount: db.prepare("SELECT count(*) AS n FROM dead").pluck(),
			deadList: db.prepare("SELECT * FROM dead ORDER BY seq LIMIT ?"),
			deleteDead: db.prepare("DELETE FROM dead WHERE seq = ?"),
			deleteDeadLetter: db.prepare("DELETE FROM dead WHERE id = ? AND died_at = ?"),
			insertDead: db.prepare(
				`INSERT INTO dead (id, key, stamp, payload, headers, received_at, attempts, reason, died_at)
				 SELECT @id, @key, @stamp, @payload, @headers, @receivedAt, @attempts, @reason, @diedAt
				 WHERE NOT EXISTS (SELECT 1 FROM dead WHERE id = @id AND died_at = @diedAt)`,
			),
			processedCount: db.prepare("SELECT count(*) AS n FROM processed").pluck(),
			actorRowCount: db.prepare("SELECT count(*) AS n FROM actors").pluck(),
		};
	}

	/**
	 * Called after every commit that adds pending rows (append, receive, requeue),
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

	/** A stamp later than every stamp this store has given: entry order across restarts. */
	nextStamp(): number {
		this.lastStamp = Math.max(Date.now() * 1000, this.lastStamp + 1);
		return this.lastStamp;
	}

	private insertAll(messages: Iterable<NewMessage | Omit<StoredMessage, "seq">>, now: number): { stored: StoredMessage[]; duplicates: number } {
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
				stamp: m.stamp ?? this.nextStamp(),
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
			stored.push({
				seq: Number(result.lastInsertRowid),
				id: row.id,
				key: row.key,
				stamp: row.stamp,
				payload: row.payload,
				headers: m.headers ?? null,
				receivedAt: row.receivedAt,
				attempts: row.attempts,
			});
		}
		// Rows leave the table, so the newest stamp is kept apart: stamps never go back after a restart.
		if (stored.length > 0) this.sql.saveStamp.run(String(this.lastStamp));
		return { stored, duplicates };
	}

	private announce(rows: StoredMessage[]): void {
		if (rows.length === 0) return;
		for (const listener of this.listeners) listener(rows);
	}

	/**
	 * Appends messages in one transaction. An id already pending or already
	 * processed here is skipped and counted as a duplicate.
	 */
	append(messages: NewMessage[]): { stored: StoredMessage[]; duplicates: number } {
		const now = Date.now();
		const result = this.db.transaction(() => this.insertAll(messages, now))();
		this.pending += result.stored.length;
		this.counts.appended += result.stored.length;
		this.counts.duplicates += result.duplicates;
		this.announce(result.stored);
		return result;
	}

	/**
	 * Takes a shipment from another node in one transaction. Messages whose id
	 * was processed (here, or by the sender per its processed list) are dropped.
	 */
	receive(shipment: Shipment): { stored: StoredMessage[]; duplicates: number } {
		const result = this.db.transaction(() => {
			let dropped = 0;
			let results = 0;
			for (const p of shipment.processed) {
				this.sql.rememberId.run(p.id, p.key, p.at);
				// A copy still pending here (a crashed node's leftovers) was performed elsewhere already.
				dropped += this.sql.deleteMessageById.run(p.id).changes;
			}
			for (const a of shipment.actors) {
				this.saveActor(a);
			}
			// A shipment sent again (its reply was lost) stores its results and dead letters once.
			for (const o of shipment.outbox ?? []) {
				results += this.sql.insertOutbox.run(o.uid, o.key, o.body, o.headers ? JSON.stringify(o.headers) : null, o.createdAt).changes;
			}
			for (const d of shipment.dead ?? []) {
				this.sql.insertDead.run({ ...d, headers: d.headers ? JSON.stringify(d.headers) : null });
			}
			return { ...this.insertAll(shipment.messages, Date.now()), dropped, results };
		})();
		this.pending += result.stored.length - result.dropped;
		this.counts.received += result.stored.length;
		this.counts.duplicates += result.duplicates + result.dropped;
		this.announce(result.stored);
		if (result.results > 0) for (const listener of this.outboxListeners) listener();
		return { stored: result.stored, duplicates: result.duplicates };
	}

	/** Commits what a group of performs did, all or nothing. */
	commit(work: Commit): void {
		const now = Date.now();
		let removed = 0;
		this.db.transaction(() => {
			for (const d of work.done ?? []) {
				removed += this.sql.deleteMessage.run(d.seq).changes;
				this.sql.rememberId.run(d.id, d.key, now);
			}
			for (const seq of work.failed ?? []) this.sql.bumpAttempts.run(seq);
			for (const d of work.dead ?? []) {
				this.sql.toDead.run(d.reason, now, d.seq);
				removed += this.sql.deleteMessage.run(d.seq).changes;
			}
			for (const a of work.actors ?? []) {
				this.saveActor(a);
			}
			for (const o of work.outbox ?? []) {
				this.sql.insertOutbox.run(randomUUID(), o.key, o.body, o.headers ? JSON.stringify(o.headers) : null, now);
			}
		})();
		this.pending -= removed;
		if (work.outbox && work.outbox.length > 0) for (const listener of this.outboxListeners) listener();
	}

	/** Inside a transaction: the actor's record as given (a tombstone when deleted). */
	private saveActor(a: ActorRecord): void {
		this.sql.upsertActor.run(a.id, a.payload === undefined ? null : JSON.stringify(a.payload), a.timeout, a.deleted ? 1 : 0);
	}

	/** Called after a commit or a shipment that wrote outbox entries, and when entries are given back to the relay. */
	onOutbox(listener: () => void): void {
		this.outboxListeners.push(listener);
	}

	/** Called when results the relay had published were confirmed or given back: they may move now. */
	onOutboxSettled(listener: () => void): void {
		this.outboxSettledListeners.push(listener);
	}

	/** Pending rows after seq, in arrival order. */
	scan(afterSeq: number, limit: number): StoredMessage[] {
		return (this.sql.scan.all(afterSeq, limit) as MessageRow[]).map(toMessage);
	}

	/** Pending rows of one key, oldest first. */
	messagesOf(key: string): StoredMessage[] {
		return (this.sql.messagesOfKey.all(key) as MessageRow[]).map(toMessage);
	}

	/** Every key this store holds anything for: messages, actor state, processed ids. */
	keysHeld(): string[] {
		return this.sql.keysHeld.all() as string[];
	}

	/**
	 * Everything held for these keys, messages oldest first per key. Results the relay has
	 * published and awaits confirms for stay out; the results taken are not published until
	 * forget() or release() of this shipment.
	 */
	shipmentOf(keys: string[]): Required<Shipment> {
		const shipment: Required<Shipment> = { messages: [], actors: [], processed: [], outbox: [], dead: [] };
		for (let i = 0; i < keys.length; i += KEYS_PER_QUERY) {
			const chunk = JSON.stringify(keys.slice(i, i + KEYS_PER_QUERY));
			for (const row of this.sql.messagesOfKeys.all(chunk) as MessageRow[]) {
				const { seq: _seq, ...message } = toMessage(row);
				shipment.messages.push(message);
			}
			for (const row of this.sql.actorsOfKeys.all(chunk) as Parameters<typeof toActor>[0][]) shipment.actors.push(toActor(row));
			for (const row of this.sql.processedOfKeys.all(chunk) as ProcessedRecord[]) shipment.processed.push(row);
			for (const row of this.sql.outboxOfKeys.all(chunk) as OutboxRow[]) {
				if (this.sending.has(row.seq) || this.shipping.has(row.uid)) continue;
				this.shipping.set(row.uid, row.seq);
				const { headers } = toOutboxEntry(row);
				shipment.outbox.push({ uid: row.uid, key: row.key, body: row.body, headers, createdAt: row.created_at });
			}
			for (const row of this.sql.deadOfKeys.all(chunk) as (MessageRow & { reason: string; died_at: number })[]) {
				const { seq: _seq, ...message } = toMessage(row);
				shipment.dead.push({ ...message, reason: row.reason, diedAt: row.died_at });
			}
		}
		return shipment;
	}

	/** Deletes a shipment the next holder has committed. */
	forget(shipment: Shipment): void {
		const removed = this.db.transaction(() => {
			let n = 0;
			for (const m of shipment.messages) n += this.sql.deleteMessageById.run(m.id).changes;
			for (const a of shipment.actors) this.sql.deleteActor.run(a.id);
			for (const p of shipment.processed) this.sql.forgetProcessed.run(p.id);
			for (const o of shipment.outbox ?? []) this.sql.deleteOutboxByUid.run(o.uid);
			for (const d of shipment.dead ?? []) this.sql.deleteDeadLetter.run(d.id, d.diedAt);
			return n;
		})();
		for (const o of shipment.outbox ?? []) this.shipping.delete(o.uid);
		this.pending -= removed;
	}

	/** A shipment that did not go (or its unsent part): its results may be published here again. */
	release(shipment: Shipment): void {
		let released = false;
		for (const o of shipment.outbox ?? []) {
			const seq = this.shipping.get(o.uid);
			if (seq === undefined) continue;
			this.shipping.delete(o.uid);
			this.outboxCursor = Math.min(this.outboxCursor, seq - 1);
			released = true;
		}
		if (released) for (const listener of this.outboxListeners) listener();
	}

	/** Whether the relay awaits the broker's confirm for a result of this key (it is not shipped meanwhile). */
	resultsInFlight(key: string): boolean {
		return this.sendingPerKey.has(key);
	}

	actor(id: string): ActorRecord | undefined {
		const row = this.sql.actor.get(id) as Parameters<typeof toActor>[0] | undefined;
		return row ? toActor(row) : undefined;
	}

	/** Every stored actor record (state that differs from the specs, and tombstones). */
	*actors(): IterableIterator<ActorRecord> {
		for (const row of this.sql.allActors.iterate() as IterableIterator<Parameters<typeof toActor>[0]>) yield toActor(row);
	}

	/** Outbox entries after seq (oldest first), to look at: the relay takes them with takeOutbox(). */
	outbox(limit: number, afterSeq = 0): OutboxEntry[] {
		return (this.sql.outboxBatch.all(afterSeq, limit) as OutboxRow[]).map(toOutboxEntry);
	}

	/**
	 * The next outbox entries for the relay to publish, oldest first, skipping those in a
	 * shipment. They count as in flight (never shipped) until outboxDone() or giveBack().
	 */
	takeOutbox(limit: number): OutboxEntry[] {
		for (;;) {
			const rows = this.sql.outboxBatch.all(this.outboxCursor, limit) as OutboxRow[];
			if (rows.length === 0) return [];
			this.outboxCursor = rows[rows.length - 1].seq;
			const taken: OutboxEntry[] = [];
			for (const row of rows) {
				if (this.shipping.has(row.uid) || this.sending.has(row.seq)) continue;
				this.sending.set(row.seq, row.key);
				this.sendingPerKey.set(row.key, (this.sendingPerKey.get(row.key) ?? 0) + 1);
				taken.push(toOutboxEntry(row));
			}
			if (taken.length > 0) return taken;
		}
	}

	/** Entries taken but not confirmed (the channel died): they are taken again, or shipped, later. */
	giveBack(seqs: number[]): void {
		for (const seq of seqs) {
			if (!this.settleSending(seq)) continue;
			this.outboxCursor = Math.min(this.outboxCursor, seq - 1);
		}
		for (const listener of this.outboxSettledListeners) listener();
	}

	private settleSending(seq: number): boolean {
		const key = this.sending.get(seq);
		if (key === undefined) return false;
		this.sending.delete(seq);
		const left = this.sendingPerKey.get(key)! - 1;
		if (left === 0) this.sendingPerKey.delete(key);
		else this.sendingPerKey.set(key, left);
		return true;
	}

	get outboxCount(): number {
		return this.sql.outboxCount.get() as number;
	}

	/** Removes outbox entries the broker has confirmed. */
	outboxDone(seqs: number[]): void {
		this.db.transaction(() => {
			for (const seq of seqs) this.sql.deleteOutbox.run(seq);
		})();
		for (const seq of seqs) this.settleSending(seq);
		for (const listener of this.outboxSettledListeners) listener();
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
		return (this.sql.deadList.all(limit) as (MessageRow & { reason: string; died_at: number })[]).map((row) => ({
			...toMessage(row),
			reason: row.reason,
			diedAt: row.died_at,
		}));
	}

	/**
	 * Moves dead letters back to pending with fresh attempts and a new stamp (they
	 * go last). A dead letter whose id was processed since is dropped instead.
	 */
	requeueDead(limit: number): { requeued: StoredMessage[]; dropped: number } {
		const dead = this.dead(limit);
		const result = this.db.transaction(() => {
			for (const d of dead) this.sql.deleteDead.run(d.seq);
			return this.insertAll(
				dead.map((d) => ({ id: d.id, key: d.key, payload: d.payload, headers: d.headers, receivedAt: d.receivedAt })),
				Date.now(),
			);
		})();
		this.pending += result.stored.length;
		this.announce(result.stored);
		return { requeued: result.stored, dropped: result.duplicates };
	}

	/** Forgets processed ids older than the dedupe window; returns how many. */
	pruneProcessed(now = Date.now()): number {
		return this.sql.pruneProcessed.run(now - this.dedupeWindowMs).changes;
	}

	close(): void {
		if (this.db.open) this.db.close();
	}
}
