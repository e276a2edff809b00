/** The store's prepared statements, made once per open file. */
import type Database = require("better-sqlite3");
import { prepareSnapshotStatements } from "./snapshot";

export function prepareStatements(db: Database.Database) {
	return {
		getMeta: db.prepare("SELECT value FROM meta WHERE name = ?").pluck(),
		setMeta: db.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES (?, ?)"),
		countPending: db.prepare("SELECT count(*) AS n FROM messages"),
		maxStamp: db.prepare("SELECT max(stamp) AS s FROM messages"),
		isProcessed: db.prepare("SELECT 1 FROM processed WHERE id = ?").pluck(),
		insertMessage: db.prepare(
			`INSERT INTO messages (id, key, stamp, payload, headers, received_at, attempts)
			 VALUES (@id, @key, @stamp, @payload, @headers, @receivedAt, @attempts) ON CONFLICT(id) DO NOTHING`,
		),
		deleteMessageById: db.prepare("DELETE FROM messages WHERE id = ?"),
		rememberId: db.prepare("INSERT OR IGNORE INTO processed (id, key, at) VALUES (?, ?, ?)"),
		forgetProcessed: db.prepare("DELETE FROM processed WHERE id = ?"),
		bumpAttempts: db.prepare("UPDATE messages SET attempts = attempts + 1 WHERE id = ?"),
		toDead: db.prepare(
			`INSERT INTO dead (id, key, stamp, payload, headers, received_at, attempts, reason, died_at)
			 SELECT id, key, stamp, payload, headers, received_at, attempts + 1, ?, ? FROM messages WHERE id = ?`,
		),
		// A record older than the one held (a stale copy met a newer one) changes nothing.
		upsertActor: db.prepare(
			`INSERT INTO actors (id, payload, timeout, deleted, version) VALUES (?, ?, ?, ?, ?)
			 ON CONFLICT(id) DO UPDATE SET payload = excluded.payload, timeout = excluded.timeout, deleted = excluded.deleted, version = excluded.version
			 WHERE excluded.version >= actors.version`,
		),
		deleteActor: db.prepare("DELETE FROM actors WHERE id = ? AND version <= ?"),
		actor: db.prepare("SELECT id, payload, timeout, deleted, version FROM actors WHERE id = ?"),
		allActors: db.prepare("SELECT id, payload, timeout, deleted, version FROM actors"),
		insertOutbox: db.prepare("INSERT INTO outbox (uid, key, body, headers, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT(uid) DO NOTHING"),
		outboxBatch: db.prepare("SELECT * FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?"),
		outboxCount: db.prepare("SELECT count(*) AS n FROM outbox").pluck(),
		deleteOutboxByUid: db.prepare("DELETE FROM outbox WHERE uid = ?"),
		scan: db.prepare("SELECT * FROM messages WHERE seq > ? ORDER BY seq LIMIT ?"),
		messagesOfKeys: db.prepare("SELECT * FROM messages WHERE key IN (SELECT value FROM json_each(?)) ORDER BY key, stamp"),
		messagesOfKey: db.prepare("SELECT * FROM messages WHERE key = ? ORDER BY stamp"),
		actorsOfKeys: db.prepare("SELECT id, payload, timeout, deleted, version FROM actors WHERE id IN (SELECT value FROM json_each(?))"),
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
		deadLetter: db.prepare("SELECT * FROM dead WHERE id = ? AND died_at = ?"),
		deleteDeadLetter: db.prepare("DELETE FROM dead WHERE id = ? AND died_at = ?"),
		insertDead: db.prepare(
			`INSERT INTO dead (id, key, stamp, payload, headers, received_at, attempts, reason, died_at)
			 SELECT @id, @key, @stamp, @payload, @headers, @receivedAt, @attempts, @reason, @diedAt
			 WHERE NOT EXISTS (SELECT 1 FROM dead WHERE id = @id AND died_at = @diedAt)`,
		),
		processedCount: db.prepare("SELECT count(*) AS n FROM processed").pluck(),
		actorRowCount: db.prepare("SELECT count(*) AS n FROM actors").pluck(),
		snapshot: prepareSnapshotStatements(db),
	};
}

export type Statements = ReturnType<typeof prepareStatements>;
