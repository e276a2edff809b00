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

export class TimerWheel<T extends WheelEntry> {
	readonly tickMs: number;
	private readonly buckets: T[][];
	private readonly origin: number;
	private current: number;

	constructor(tickMs = 10, size = 1024, now = Date.now()) {
		this.tickMs = tickMs;
		this.buckets = Array.from({ length: size }, () => []);
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
		this.buckets[tick % this.buckets.length].push(entry);
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
			const bucket = this.buckets[tick % size];
			if (bucket.length > 0) {
				const entries = bucket.splice(0);
				const late = now - this.timeOf(tick);
				for (let i = 0; i < entries.length; i++) {
					const entry = entries[i];
					if (entry.due === tick) {
						entry.due = 0;
						fire(entry, late);
						fired++;
					} else if (entry.due > tick && entry.due % size === tick % size) {
						bucket.push(entry);
					}
				}
			}
			this.current++;
			if (fired >= budget) return this.current > target;
		}
		return true;
	}
}
