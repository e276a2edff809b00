/**
 * The file of a node with a transporter is a working copy: once marked as held by
 * its journal, the next start drops it, whatever its own pages say.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, describe, it } from "node:test";
import { dropStaleStore, markJournaled } from "../../lib/durable/stale-store";
import { Store } from "../../lib/store/store";
import { applyFrom, row } from "../support/records";
import { tempDir } from "../support/tmp";

const dir = tempDir("keyhive-stale-");
after(() => dir.cleanup());

/** A store file of node holding one pending row. */
function storeWithRow(node: string): string {
	const store = Store.open(dir.dir, node);
	applyFrom(store, 1, { t: "append", rows: [row("m1", "k", 1)] });
	store.close();
	return path.join(dir.dir, `${node}.sqlite`);
}

describe("a node's store at start with a transporter", () => {
	it("is dropped, with its mark, once marked as held by a journal, even when its pages do not name the instance", () => {
		const file = storeWithRow("marked");
		markJournaled(dir.dir, "marked", "marked-abc");
		dropStaleStore(dir.dir, "marked");
		assert.equal(fs.existsSync(file), false);
		assert.equal(fs.existsSync(path.join(dir.dir, "marked.journaled")), false);
	});

	it("is kept when never marked: a lone node's file, adopted into the journal at open", () => {
		const file = storeWithRow("lone");
		dropStaleStore(dir.dir, "lone");
		const store = new Store(file);
		assert.equal(store.pendingCount, 1);
		store.close();
	});

	it("is dropped when an earlier version named its instance in the store itself", () => {
		const file = storeWithRow("older");
		const store = new Store(file);
		store.setMeta("instance", "older-abc");
		store.close();
		dropStaleStore(dir.dir, "older");
		assert.equal(fs.existsSync(file), false);
	});

	it("is dropped when it cannot be read", () => {
		const file = path.join(dir.dir, "torn.sqlite");
		fs.writeFileSync(file, "not a database, a file a power loss left behind");
		dropStaleStore(dir.dir, "torn");
		assert.equal(fs.existsSync(file), false);
	});
});
