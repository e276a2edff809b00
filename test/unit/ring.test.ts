import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Ring } from "../../lib/ring";

const KEYS = 100_000;
const keys: string[] = Array.from({ length: KEYS }, (_, i) => `key_${i + 1}`);

function owners(ring: Ring): (string | null)[] {
	return keys.map((k) => ring.ownerOf(k));
}

function countBy(values: (string | null)[]): Map<string | null, number> {
	const counts = new Map<string | null, number>();
	for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
	return counts;
}

describe("Ring", () => {
	it("every process computes the same owner from the same member set, whatever the order or duplicates", () => {
		// Two "processes": the ring built twice from differently ordered and duplicated lists.
		const a = Ring.of(["n3", "n1", "n4", "n2"]);
		const b = Ring.of(["n2", "n2", "n4", "n1", "n3", "n1"]);
		assert.deepEqual(a.members, ["n1", "n2", "n3", "n4"]);
		assert.deepEqual(b.members, a.members);
		assert.equal(a.id, b.id);
		const ownersA = owners(a);
		const ownersB = owners(b);
		let differ = 0;
		for (let i = 0; i < KEYS; i++) if (ownersA[i] !== ownersB[i]) differ++;
		assert.equal(differ, 0, `${differ} of ${KEYS} keys have different owners`);
		for (const o of ownersA) assert.ok(o !== null && a.has(o));
	});

	it("is independent of Math.random (points are derived from the nodeID)", () => {
		const original = Math.random;
		const first = owners(Ring.of(["x", "y", "z"]));
		Math.random = () => 0.5;
		try {
			const second = owners(Ring.of(["z", "y", "x"]));
			assert.deepEqual(second, first);
		} finally {
			Math.random = original;
		}
	});

	it("3 → 4 members moves at most 1.15 × 25% of the keys, all of them to the new member", () => {
		const before = owners(Ring.of(["n1", "n2", "n3"]));
		const after = owners(Ring.of(["n1", "n2", "n3", "n4"]));
		let moved = 0;
		const wrong: string[] = [];
		for (let i = 0; i < KEYS; i++) {
			if (before[i] === after[i]) continue;
			moved++;
			if (after[i] !== "n4" && wrong.length < 5) wrong.push(`${keys[i]}: ${before[i]} → ${after[i]}`);
		}
		assert.deepEqual(wrong, [], "a key moved between old members");
		assert.ok(moved > 0, "no key moved to the new member");
		assert.ok(moved <= 1.15 * 0.25 * KEYS, `${moved} keys moved (${((100 * moved) / KEYS).toFixed(1)}%)`);
	});

	it("4 → 3 members (one removed) moves only the removed member's keys", () => {
		const before = owners(Ring.of(["n1", "n2", "n3", "n4"]));
		const after = owners(Ring.of(["n1", "n2", "n4"]));
		for (let i = 0; i < KEYS; i++) {
			if (before[i] === "n3") assert.notEqual(after[i], "n3");
			else assert.equal(after[i], before[i], `${keys[i]} moved from ${before[i]} to ${after[i]} though ${before[i]} stayed`);
		}
	});

	it("an empty ring owns nothing", () => {
		const empty = Ring.of([]);
		assert.deepEqual(empty.members, []);
		assert.equal(empty.ownerOf("key_1"), null);
		assert.equal(empty.ownerOf(""), null);
		assert.equal(empty.has("n1"), false);
	});

	it("a one-member ring owns every key with that member", () => {
		const one = Ring.of(["solo"]);
		for (let i = 0; i < 1000; i++) assert.equal(one.ownerOf(keys[i]), "solo");
	});

	it("ring ids are equal exactly when the member sets are equal", () => {
		assert.equal(Ring.of(["a", "b"]).id, Ring.of(["b", "a", "a"]).id);
		assert.equal(Ring.of([]).id, Ring.of([]).id);
		const sets = [[], ["a"], ["b"], ["a", "b"], ["a", "b", "c"], ["ab"], ["a", "bc"], ["ab", "c"]];
		const ids = sets.map((s) => Ring.of(s).id);
		assert.equal(new Set(ids).size, sets.length, `ids collide: ${ids.join(", ")}`);
		// The number of points is part of what makes owners equal, so it is part of the id.
		assert.notEqual(Ring.of(["a", "b"], 160).id, Ring.of(["a", "b"], 40).id);
	});

	it("balance: with 4 members each owns between 15% and 35% of the keys", () => {
		for (const members of [
			["n1", "n2", "n3", "n4"],
			["keyhive-1", "keyhive-2", "keyhive-3", "keyhive-4"],
			["a", "b", "c", "d"],
		]) {
			const counts = countBy(owners(Ring.of(members)));
			assert.deepEqual([...counts.keys()].sort(), members);
			for (const [member, n] of counts) {
				const share = n / KEYS;
				assert.ok(share >= 0.15 && share <= 0.35, `${member} owns ${(share * 100).toFixed(1)}% of ${members.join(",")}`);
			}
		}
	});
});

describe("Ring balance on small key sets", () => {
	it("spreads 1,000 sequential keys evenly over two members (40–60% each)", () => {
		const ring = Ring.of(["r1", "r2"]);
		let first = 0;
		for (let i = 1; i <= 1000; i++) if (ring.ownerOf(`key_${i}`) === "r1") first++;
		assert.ok(first >= 400 && first <= 600, `r1 owns ${first} of 1000`);
	});
});
