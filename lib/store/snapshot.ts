/**
 * A store's whole content, read in parts of about a given size: the journal writes
 * it as a snapshot, a takeover and an adopting node copy a store with it.
 *
 * readSnapshotPart pages through the tables with a cursor; it sees every change
 * made between two calls, so it is for a store nothing writes while it is read.
 * A SnapshotReader sees the store as it was when the reader opened, while the
 * store goes on changing: for a file, a second connection holds one read
 * transaction open (in WAL mode SQLite shows it the file as of its first read,
 * whatever commits later); a store in memory has no second connection, so its
 * reader copies everything when it opens.
 */
import Database = require("better-sqlite3");
import { type ActorRow, type DeadRow, type MessageRow, type OutboxRow, toActor, toShippedDead, toShippedMessage, toShippedOutbox } from "./rows";
import { emptyShipment, type ProcessedRecord, type Shipment } from "./types";

/** The order in which a snapshot reads the tables. */
const SNAPSHOT_TABLES = ["actors", "processed", "messages", "outbox", "dead"] as const;
/** Rows read per query. */
const PAGE_ROWS = 500;

export type SnapshotStatements = ReturnType<typeof prepareSnapshotStatements>;

/** Keyset pages of each table. */
export function prepareSnapshotStatements(db: Database.Database) {
	return {
		actors: db.prepare("SELECT id, payload, timeout, deleted, version FROM actors WHERE id > ? ORDER BY id LIMIT ?"),
		processed: db.prepare("SELECT id, key, at FROM processed WHERE id > ? ORDER BY id LIMIT ?"),
		messages: db.prepare("SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?"),
		outbox: db.prepare("SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?"),
		dead: db.prepare("SELECT * FROM dead WHERE seq > ? ORDER BY seq LIMIT ?"),
	};
}

/**
 * The next part of about maxBytes after cursor (null to begin; the cursor names a
 * table and the last key read in it); null when all was read.
 */
export function readSnapshotPart(sql: SnapshotStatements, cursor: string | null, maxBytes: number): { part: Shipment; cursor: string } | null {
	let [table, after] = cursor ? (JSON.parse(cursor) as [number, string | number]) : [0, ""];
	if (table >= SNAPSHOT_TABLES.length) return null;
	const part = emptyShipment();
	let bytes = 0;
	let full = false;
	while (table < SNAPSHOT_TABLES.length && !full) {
		const name = SNAPSHOT_TABLES[table];
		const rows = sql[name].all(after, PAGE_ROWS) as Record<string, unknown>[];
		if (rows.length === 0) {
			table++;
			after = SNAPSHOT_TABLES[table] === "processed" ? "" : 0;
			continue;
		}
		for (const row of rows) {
			const size = JSON.stringify(row).length;
			// A part holds at least one row, and never goes past maxBytes for another.
			full = bytes > 0 && bytes + size > maxBytes;
			if (full) break;
			bytes += size;
			if (name === "actors") part.actors.push(toActor(row as ActorRow));
			else if (name === "processed") part.processed.push(row as unknown as ProcessedRecord);
			else if (name === "messages") part.messages.push(toShippedMessage(row as unknown as MessageRow));
			else if (name === "outbox") part.outbox.push(toShippedOutbox(row as unknown as OutboxRow));
			else part.dead.push(toShippedDead(row as unknown as DeadRow));
			after = (name === "actors" || name === "processed" ? row.id : row.seq) as string | number;
		}
	}
	return { part, cursor: JSON.stringify([table, after]) };
}

/** The store as it was when the reader opened, part by part; an empty store is one empty part. */
export interface SnapshotReader {
	/** The next part, and whether it is the last; null after the last. */
	next(): { part: Shipment; last: boolean } | null;
	/** Ends the reader's read transaction (at once for one read to its end). */
	close(): void;
}

/**
 * Opens a reader of the store in file as it is now. Called between two transactions
 * of the store's own connection (sql reads that connection: a store in memory is
 * copied with it at once).
 */
export function openSnapshotReader(file: string, sql: SnapshotStatements, partBytes: number): SnapshotReader {
	if (file === ":memory:") {
		const parts: Shipment[] = [];
		for (let next = readSnapshotPart(sql, null, partBytes); next; next = readSnapshotPart(sql, next.cursor, partBytes)) parts.push(next.part);
		return new PartsRead<number>(
			(cursor) => ((cursor ?? 0) < parts.length ? { part: parts[cursor ?? 0], cursor: (cursor ?? 0) + 1 } : null),
			() => undefined,
		);
	}
	const db = new Database(file, { readonly: true, fileMustExist: true });
	try {
		const pinned = prepareSnapshotStatements(db);
		db.exec("BEGIN");
		// The first read fixes what the transaction sees, for as long as it stays open.
		pinned.actors.all("", 1);
		return new PartsRead<string>(
			(cursor) => readSnapshotPart(pinned, cursor, partBytes),
			() => {
				if (db.open) db.close();
			},
		);
	} catch (err) {
		db.close();
		throw err;
	}
}

/** Parts read one ahead, so the reader knows which one is the last. */
class PartsRead<C> implements SnapshotReader {
	private ahead: { part: Shipment; cursor: C } | null;
	private closed = false;

	constructor(
		private readonly read: (cursor: C | null) => { part: Shipment; cursor: C } | null,
		private readonly release: () => void,
	) {
		this.ahead = read(null);
		if (this.ahead === null) this.close();
	}

	next(): { part: Shipment; last: boolean } | null {
		if (this.closed || this.ahead === null) return null;
		const current = this.ahead;
		this.ahead = this.read(current.cursor);
		if (this.ahead === null) this.close();
		return { part: current.part, last: this.ahead === null };
	}

	close(): void {
		if (this.closed) return;
		this.closed = true;
		this.release();
	}
}
