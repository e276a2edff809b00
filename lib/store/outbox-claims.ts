/**
 * Which side holds an outbox row right now. A result is published by the relay
 * or moved away with its key, never both: rows the relay published and awaits
 * confirms for (seq → key) are not shipped, rows in a shipment the receiver has
 * not committed yet (uid → seq) are not published.
 */
export class OutboxClaims {
	private readonly sending = new Map<number, string>();
	private readonly sendingPerKey = new Map<string, number>();
	private readonly shipping = new Map<string, number>();

	isClaimed(seq: number, uid: string): boolean {
		return this.sending.has(seq) || this.shipping.has(uid);
	}

	claimForRelay(seq: number, key: string): void {
		this.sending.set(seq, key);
		this.sendingPerKey.set(key, (this.sendingPerKey.get(key) ?? 0) + 1);
	}

	/** Whether the relay awaits a confirm for a result of this key. */
	relayHolds(key: string): boolean {
		return this.sendingPerKey.has(key);
	}

	/** The relay is done with seq (confirmed or given back); false if it did not hold it. */
	settleRelay(seq: number): boolean {
		const key = this.sending.get(seq);
		if (key === undefined) return false;
		this.sending.delete(seq);
		const left = this.sendingPerKey.get(key)! - 1;
		if (left === 0) this.sendingPerKey.delete(key);
		else this.sendingPerKey.set(key, left);
		return true;
	}

	claimForShipment(uid: string, seq: number): void {
		this.shipping.set(uid, seq);
	}

	/** The shipment of uid is over; returns the row's seq if it was claimed. */
	settleShipment(uid: string): number | undefined {
		const seq = this.shipping.get(uid);
		this.shipping.delete(uid);
		return seq;
	}
}
