/**
 * Temp directories and real SQLite stores for tests. Everything made in one
 * is removed by its cleanup() (call it from `after`).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import Database = require("better-sqlite3");
import { Store, type StoreOptions } from "../../lib/store/store";

export interface TempDir {
	readonly dir: string;
	/** A Store on <dir>/<name>.sqlite; closed by cleanup(). */
	store(name?: string, options?: StoreOptions): Store;
	file(name: string): string;
	cleanup(): void;
}

/** A fresh directory under the OS temp dir, named `<prefix>-<random>`. */
export function tempDir(prefix = "keyhive"): TempDir {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix.replace(/-$/, "")}-`));
	const stores: Store[] = [];
	return {
		dir,
		store(name = "node", options: StoreOptions = {}) {
			const store = Store.open(dir, name, { synchronous: "NORMAL", ...options });
			stores.push(store);
			return store;
		},
		file(name: string) {
			return path.join(dir, name);
		},
		cleanup() {
			for (const s of stores) s.close();
			fs.rmSync(dir, { recursive: true, force: true });
		},
	};
}

/** Runs SQL on a store's file through a second, independent connection (real SQLite, for fault injection). */
export function onFile(file: string, sql: string): void {
	const db = new Database(file);
	try {
		db.exec(sql);
	} finally {
		db.close();
	}
}

/**
 * Caps the store's own SQLite connection at the pages it has now (PRAGMA max_page_count): its next
 * growth fails with a real SQLITE_FULL, as on a full disk. Returns the function that gives the room back.
 */
export function fillDisk(store: Store): () => void {
	const db = (store as unknown as { db: Database.Database }).db;
	const pages = db.pragma("page_count", { simple: true }) as number;
	const limit = db.pragma("max_page_count", { simple: true }) as number;
	db.pragma(`max_page_count = ${pages}`);
	return () => db.pragma(`max_page_count = ${limit}`);
}
