/**
 * Scheduler lag percentiles from a fixed histogram: 1 ms buckets up to 1 s,
 * then one overflow bucket. Constant memory whatever the perform rate.
 */
const BUCKETS = 1001;

export class LagHistogram {
	private counts = new Uint32Array(BUCKETS);
	private total = 0;

	record(lateMs: number): void {
		const bucket = lateMs <= 0 ? 0 : lateMs >= BUCKETS - 1 ? BUCKETS - 1 : Math.floor(lateMs);
		this.counts[bucket]++;
		this.total++;
	}

	private percentile(p: number): number {
		if (this.total === 0) return 0;
		const rank = Math.ceil(this.total * p);
		let seen = 0;
		for (let i = 0; i < BUCKETS; i++) {
			seen += this.counts[i];
			if (seen >= rank) return i;
		}
		return BUCKETS - 1;
	}

	snapshot(): { p50: number; p99: number; count: number } {
		return { p50: this.percentile(0.5), p99: this.percentile(0.99), count: this.total };
	}

	/** The percentiles so far, then starts over. */
	take(): { p50: number; p99: number; count: number } {
		const snap = this.snapshot();
		this.counts = new Uint32Array(BUCKETS);
		this.total = 0;
		return snap;
	}
}
