/**
 * A journal instance's id: the node id that writes it (base64url, so any node id
 * fits in one NATS subject token) and 16 random hex digits, fresh at every start.
 * Whoever finds a journal knows whose it is, and so whether it is orphaned:
 * its node is gone, or advertises another instance now.
 */
import { randomBytes } from "crypto";

const RANDOM_HEX = 16;

export function newInstanceId(node: string): string {
	return `${Buffer.from(node).toString("base64url")}-${randomBytes(RANDOM_HEX / 2).toString("hex")}`;
}

/** The node that writes the instance, or null for a name this scheme did not make. */
export function nodeOfInstance(instance: string): string | null {
	const match = /^([A-Za-z0-9_-]+)-[0-9a-f]{16}$/.exec(instance);
	return match ? Buffer.from(match[1], "base64url").toString() : null;
}

/**
 * Whether a journal is orphaned, given the keyhive nodes discovery sees and the
 * instance each advertises (null: it has not opened its journal yet, so it waits).
 */
export function orphanState(instance: string, live: ReadonlyMap<string, string | null>): "live" | "orphaned" | "starting" {
	const node = nodeOfInstance(instance);
	if (node === null || !live.has(node)) return "orphaned";
	const advertised = live.get(node);
	if (advertised === null || advertised === undefined) return "starting";
	return advertised === instance ? "live" : "orphaned";
}
