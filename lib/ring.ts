/**
 * The consistent-hash ring: a pure function of the member list.
 *
 * consistent-hash places points with Math.random() by default, so two processes
 * would build different rings. Here every node's points are derived from a hash
 * of its nodeID and nodes are added in sorted order, so every process computes
 * the same owner for every key, and a join or leave moves only about 1/N of them.
 */
import { createHash } from "crypto";
import ConsistentHash = require("consistent-hash");
import { readConfig } from "./config";

/** Ring positions; a prime, as consistent-hash recommends for its key hash. */
const RANGE = 1_000_003;

/** KEYHIVE_RING_POINTS's default, for rings made without a node's configuration (tests, tools). */
const DEFAULT_POINTS = readConfig({}).ringPoints;

export class Ring {
	readonly members: readonly string[];
	/** Identifies this ring: equal ids mean equal member lists and points, hence equal owners. */
	readonly id: string;
	private readonly hash: ConsistentHash | null;

	private constructor(members: string[], points: number) {
		this.members = members;
		this.id = createHash("sha1")
			.update(`${points}|${members.join("\n")}`)
			.digest("hex")
			.slice(0, 16);
		if (members.length === 0) {
			this.hash = null;
			return;
		}
		this.hash = new ConsistentHash({ range: RANGE });
		for (const member of members) this.hash.add(member, points, pointsOf(member, points));
	}

	/** The ring of these members; order and duplicates of the input do not matter. */
	static of(members: Iterable<string>, points = DEFAULT_POINTS): Ring {
		return new Ring([...new Set(members)].sort(), points);
	}

	/** The member that owns key, or null when the ring is empty. */
	ownerOf(key: string): string | null {
		return this.hash === null ? null : (this.hash.get(mix(key)) as string);
	}

	has(member: string): boolean {
		return this.members.includes(member);
	}
}

/**
 * A well-mixed stand-in for a key. consistent-hash places keys with a PJW
 * string hash that keeps the structure of keys like key_1 … key_1000, so small
 * sets of such keys would bunch on one node; FNV-1a spreads them.
 */
function mix(key: string): string {
	let h = 0x811c9dc5;
	for (let i = 0; i < key.length; i++) {
		h ^= key.charCodeAt(i);
		h = Math.imul(h, 0x01000193);
	}
	return (h >>> 0).toString(16);
}

/** Deterministic ring positions of one member. */
function pointsOf(member: string, count: number): number[] {
	const points: number[] = [];
	for (let i = 0; points.length < count; i++) {
		const digest = createHash("sha256").update(`${member}#${i}`).digest();
		points.push(digest.readUInt32BE(0) % RANGE);
	}
	return points;
}
