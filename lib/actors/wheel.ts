/**
 * A hashed timer wheel: one interval timer for every actor on the node.
 * An entry is a reference in a bucket array (8 bytes), and its due tick lives
 * on the entry itself, so rescheduling never searches: stale references are
 * skipped when their bucket comes round.
 */
export interface WheelEntry {
	/** The tick this entry is due at; 0 when not scheduled. */
	due: number;
}

/** Drained bucket arrays kept for reuse at most. */
const POOL_MAX = 64;

export class TimerWheel<T extends WheelEntry> {
	readonly tickMs: number;
	/** null while a bucket is empty: only buckets in use hold an array. */
	private readonly buckets: ((T | null)[] | null)[];
	/** Live slots of each bucket (array lengths never shrink, so a steady load allocates nothing). */
	private readonly fill: Uint32Array;
	/** Drained arrays, kept with their capacity for the next bucket that fills. */
	private readonly pool: (T | null)[][] = [];
	private readonly origin: number;
	private current: number;

	constructor(tickMs = 10, size = 1024, now = Date.now()) {
		this.tickMs = tickMs;
		this.buckets = new Array(size).fill(null);
		this.fill = new Uint32Array(size);
		this.origin = now;
		this.current = 1;
	}

	/** The tick that contains this time. */
	tickOf(time: number): number {
		return Math.max(1, Math.floor((time - this.origin) / this.tickMs) + 1);
	}

	/** The time a tick is due. */
	timeOf(tick: number): number {
		return this.origin + (tick - 1) * this.tickMs;
	}

	/** Schedules entry to fire after delayMs (rounded up to the next tick). */
	schedule(entry: T, delayMs: number, now: number): void {
		const tick = Math.max(this.current + 1, Math.ceil((now + delayMs - this.origin) / this.tickMs) + 1);
		entry.due = tick;
		const b = tick % this.buckets.length;
		let bucket = this.buckets[b];
		if (bucket === null) bucket = this.buckets[b] = this.pool.pop() ?? [];
		const n = this.fill[b];
		if (n < bucket.length) bucket[n] = entry;
		else bucket.push(entry);
		this.fill[b] = n + 1;
	}

	cancel(entry: T): void {
		entry.due = 0;
	}

	/**
	 * Fires every entry due up to now, in tick order; fire gets the entry and
	 * how late it fired (ms). Stops early when budget entries have fired.
	 * Returns whether it caught up with now.
	 */
	advance(now: number, fire: (entry: T, lateMs: number) => void, budget = Infinity): boolean {
		const target = this.tickOf(now);
		const size = this.buckets.length;
		let fired = 0;
		while (this.current <= target) {
			const tick = this.current;
			const b = tick % size;
			if (this.fill[b] > 0) {
				const bucket = this.buckets[b]!;
				const late = now - this.timeOf(tick);
				let keep = 0;
				// fill[b] may grow while firing (an entry rescheduled a whole turn later): those are kept.
				for (let i = 0; i < this.fill[b]; i++) {
					const entry = bucket[i]!;
					if (entry.due === tick) {
						entry.due = 0;
						fire(entry, late);
						fired++;
					} else if (entry.due > tick && entry.due % size === b) {
						bucket[keep++] = entry;
					}
				}
				const end = this.fill[b];
				for (let i = keep; i < end; i++) bucket[i] = null;
				this.fill[b] = keep;
				if (keep === 0) {
					this.buckets[b] = null;
					// Capacity follows the load: more than half unused is given back (V8 trims in place).
					if (bucket.length > 2 * end + 16) bucket.length = end;
					if (this.pool.length < POOL_MAX) this.pool.push(bucket);
				}
			}
			this.current++;
			if (fired >= budget) return this.current > target;
		}
		return true;
	}
}
