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

/** What a taker knows of an instance besides discovery now. */
export interface InstanceHistory {
	/** Its node advertised it while in discovery, earlier. */
	seenLive: boolean;
	/** It was found, its node not in discovery, longer ago than a node takes to be discovered. */
	graceOver: boolean;
}

/**
 * Whether a journal is orphaned, given the keyhive nodes discovery sees and the instance each
 * advertises (null: it has not opened its journal yet, or an INFO without it came late).
 * A journal opens before its node is discovered, so one whose node is not in discovery
 * is starting until the grace is over, unless it was seen live before.
 */
export function orphanState(instance: string, live: ReadonlyMap<string, string | null>, history: InstanceHistory): "live" | "orphaned" | "starting" {
	const node = nodeOfInstance(instance);
	if (node === null) return "orphaned";
	if (live.has(node)) {
		const advertised = live.get(node);
		if (advertised === instance) return "live";
		return advertised === null || advertised === undefined ? "starting" : "orphaned";
	}
	return history.seenLive || history.graceOver ? "orphaned" : "starting";
}

/** Why orphanState says orphaned, for the log. */
export function whyOrphaned(instance: string, live: ReadonlyMap<string, string | null>): string {
	const node = nodeOfInstance(instance);
	if (node === null) return "its name says no node";
	if (!live.has(node)) return `node ${node} is not in discovery`;
	return `node ${node} advertises instance ${live.get(node)} now`;
}
