/**
 * Post-mortem helpers: where a node's SQLite file (running or not) holds
 * something, read-only. Used when a check fails, and after a graceful leave
 * (a node that scaled in never comes back, so whatever it kept is lost).
 */
import Database = require("better-sqlite3");
import * as fs from "fs";

export interface Leftovers {
	pending: number;
	outbox: number;
	dead: number;
}

function open(file: string): Database.Database | null {
	if (!fs.existsSync(file)) return null;
	try {
		const db = new Database(file, { readonly: true, fileMustExist: true });
		db.pragma("busy_timeout = 2000");
		return db;
	} catch {
		return null;
	}
}

/** Pending rows, unpublished results and dead letters in a store file, or null when it cannot be read. */
export function leftovers(file: string): Leftovers | null {
	const db = open(file);
	if (!db) return null;
	try {
		const count = (table: string) => (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
		return { pending: count("messages"), outbox: count("outbox"), dead: count("dead") };
	} catch {
		return null;
	} finally {
		db.close();
	}
}

/** For each id, where it is in these store files: "c2: pending (key_7, attempts 0)", "c3: processed", … */
export function locate(files: Map<string, string>, ids: string[]): Map<string, string[]> {
	const found = new Map<string, string[]>(ids.map((id) => [id, []]));
	for (const [node, file] of files) {
		const db = open(file);
		if (!db) continue;
		try {
			const pending = db.prepare("SELECT key, attempts, stamp FROM messages WHERE id = ?");
			const dead = db.prepare("SELECT key, reason FROM dead WHERE id = ?");
			const processed = db.prepare("SELECT key, at FROM processed WHERE id = ?");
			const outbox = db.prepare("SELECT seq FROM outbox WHERE body LIKE ?");
			for (const id of ids) {
				const where = found.get(id)!;
				const p = pending.get(id) as { key: string; attempts: number; stamp: number } | undefined;
				if (p) where.push(`${node}: pending (${p.key}, attempts ${p.attempts}, stamp ${p.stamp})`);
				const d = dead.get(id) as { key: string; reason: string } | undefined;
				if (d) where.push(`${node}: dead (${d.key}: ${d.reason})`);
				const r = processed.get(id) as { key: string; at: number } | undefined;
				if (r) where.push(`${node}: processed at ${new Date(r.at).toISOString()}`);
				if (outbox.get(`%"id":${JSON.stringify(id)}%`)) where.push(`${node}: result in outbox, not yet published`);
			}
		} catch (err) {
			for (const id of ids) found.get(id)!.push(`${node}: unreadable (${(err as Error).message})`);
		} finally {
			db.close();
		}
	}
	return found;
}
