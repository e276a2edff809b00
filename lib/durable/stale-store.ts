/**
 * With a transporter a node's SQLite file is only a working copy: its journal in
 * JetStream holds all of it, and the file of an earlier instance is stale (that
 * instance's journal is taken over). The file is not synced to the disk, so what
 * marks it stale is a file of its own, synced when it is written: a power loss
 * that leaves the store's pages old or torn cannot make a stale file look fresh.
 */
import * as fs from "fs";
import * as path from "path";
import { Store } from "../store/store";

function markOf(dir: string, nodeID: string): string {
	return path.join(dir, `${nodeID}.journaled`);
}

/** Marks the node's store as held by the journal of instance (called once it is, before the file stops being synced). */
export function markJournaled(dir: string, nodeID: string, instance: string): void {
	const fd = fs.openSync(markOf(dir, nodeID), "w");
	try {
		fs.writeSync(fd, `${instance}\n`);
		fs.fsyncSync(fd);
	} finally {
		fs.closeSync(fd);
	}
	const dirFd = fs.openSync(dir, "r");
	try {
		fs.fsyncSync(dirFd);
	} finally {
		fs.closeSync(dirFd);
	}
}

/** Deletes the node's store (and its mark) when an earlier instance's journal holds it, or it cannot be read. */
export function dropStaleStore(dir: string, nodeID: string): void {
	let stale = fs.existsSync(markOf(dir, nodeID));
	if (!stale) {
		try {
			const store = Store.open(dir, nodeID);
			// Files marked before the mark existed: the instance is in the store itself.
			stale = store.meta("instance") !== undefined;
			store.close();
		} catch {
			stale = true;
		}
	}
	if (!stale) return;
	Store.remove(dir, nodeID);
	fs.rmSync(markOf(dir, nodeID), { force: true });
}
