/**
 * Stamps order a key's messages by where they entered keyhive, with no clock:
 * stamp = epoch × 2^21 + a count. An epoch is a journal position (one order for the
 * whole cluster), taken when an inbox consumer starts receiving: RabbitMQ gives the
 * inbox to one consumer at a time, so every row a later consumer stamps sorts after
 * every row an earlier one stamped, and rows of one consumer sort in delivery order.
 */
import { STAMPS_PER_EPOCH } from "../store/store";

export class Stamps {
	private epoch = 0;
	private used = 0;

	constructor(private readonly takeEpoch: () => Promise<number>) {}

	/** Starts a new epoch: from now on every stamp sorts after every stamp taken anywhere before. */
	async renew(): Promise<void> {
		const epoch = await this.takeEpoch();
		if (epoch > this.epoch) {
			this.epoch = epoch;
			this.used = 0;
		}
	}

	/** The first of count consecutive stamps. */
	async range(count: number): Promise<number> {
		if (this.epoch === 0 || this.used + count > STAMPS_PER_EPOCH) await this.renew();
		const first = this.epoch * STAMPS_PER_EPOCH + this.used;
		this.used += count;
		return first;
	}

	/** The epoch a stamp was taken in. */
	static epochOf(stamp: number): number {
		return Math.floor(stamp / STAMPS_PER_EPOCH);
	}

	get current(): number {
		return this.epoch;
	}
}
