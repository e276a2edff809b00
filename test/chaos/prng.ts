/**
 * A small seeded PRNG (mulberry32) so a chaos run is reproducible: the same
 * seed gives the same sequence of actions, targets and delays.
 */

/** mulberry32: 32-bit state, period 2^32, good enough to pick chaos actions. */
export function mulberry32(seed: number): () => number {
	let state = seed >>> 0;
	return () => {
		state = (state + 0x6d2b79f5) >>> 0;
		let t = state;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

export class Prng {
	readonly seed: number;
	private readonly next: () => number;

	constructor(seed: number) {
		if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new RangeError(`seed must be an integer in 0..4294967295, got ${seed}`);
		this.seed = seed;
		this.next = mulberry32(seed);
	}

	/** A float in [0, 1). */
	float(): number {
		return this.next();
	}

	/** An integer in [min, max], both included. */
	int(min: number, max: number): number {
		if (max < min) throw new RangeError(`empty range ${min}..${max}`);
		return min + Math.floor(this.next() * (max - min + 1));
	}

	/** One element of a non-empty list. */
	pick<T>(list: readonly T[]): T {
		if (list.length === 0) throw new RangeError("pick from an empty list");
		return list[Math.floor(this.next() * list.length)];
	}
}

/** A seed for when none is given (printed, so the run can be repeated). */
export function randomSeed(): number {
	return Math.floor(Math.random() * 0x100000000) >>> 0;
}
