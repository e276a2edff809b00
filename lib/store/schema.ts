/**
 * The node-local SQLite schema. One file per node; every table that holds
 * something about a key has that key, so a key's messages, actor state,
 * processed ids, unpublished results and dead letters can be shipped together
 * when the key moves.
 */
/**
 * 2: message and outbox seqs are AUTOINCREMENT (never reused). No file of version 1 was ever released.
 * 3: outbox rows have the key whose perform made them and an id of their own, so they move with the key.
 * 4: actor records have the journal position that committed them (version): the later copy wins.
 */
export const SCHEMA_VERSION = 4;

export const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (
	name TEXT PRIMARY KEY,
	value TEXT NOT NULL
) WITHOUT ROWID;

-- Pending messages. seq is local arrival order, never reused (AUTOINCREMENT: the
-- worker and the outbox relay keep seqs in memory across deletes); stamp is the order the message
-- entered keyhive (kept when a row is shipped), which is the order per key.
CREATE TABLE IF NOT EXISTS messages (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	key TEXT NOT NULL,
	stamp INTEGER NOT NULL,
	payload TEXT NOT NULL,
	headers TEXT,
	received_at INTEGER NOT NULL,
	attempts INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_by_key ON messages (key, stamp);

-- Ids already performed here: the dedupe window.
CREATE TABLE IF NOT EXISTS processed (
	id TEXT PRIMARY KEY,
	key TEXT NOT NULL,
	at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS processed_by_at ON processed (at);
CREATE INDEX IF NOT EXISTS processed_by_key ON processed (key);

-- Actor state that differs from childrenSpecs(): committed payloads, changed
-- timeouts, actors made by put or on demand, and tombstones of removed ones.
CREATE TABLE IF NOT EXISTS actors (
	id TEXT PRIMARY KEY,
	payload TEXT,
	timeout INTEGER NOT NULL,
	deleted INTEGER NOT NULL DEFAULT 0,
	version INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Messages that failed their last attempt; they move with their key and wait for a requeue.
CREATE TABLE IF NOT EXISTS dead (
	seq INTEGER PRIMARY KEY,
	id TEXT NOT NULL,
	key TEXT NOT NULL,
	stamp INTEGER NOT NULL,
	payload TEXT NOT NULL,
	headers TEXT,
	received_at INTEGER NOT NULL,
	attempts INTEGER NOT NULL,
	reason TEXT NOT NULL,
	died_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS dead_by_key ON dead (key);

-- Results written in the same transaction as the perform that made them,
-- published from here and deleted once the broker confirmed them. uid stays the
-- same when a row moves with its key, so a shipment sent twice stores it once.
CREATE TABLE IF NOT EXISTS outbox (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	uid TEXT NOT NULL UNIQUE,
	key TEXT NOT NULL,
	body TEXT NOT NULL,
	headers TEXT,
	created_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_key ON outbox (key);
`;

/** Brings a file of an older version up to this one where that is possible; false when it is not. */
export function migrate(db: { exec(sql: string): unknown }, from: number): boolean {
	if (from !== 3) return false;
	db.exec("ALTER TABLE actors ADD COLUMN version INTEGER NOT NULL DEFAULT 0");
	return true;
}
