/**
 * The one shipping loop: whatever this node holds for a key it does not own
 * goes to the key's owner, and is deleted here only after the owner committed it.
 *
 * Newly stored rows and the resync after a view change are the same thing:
 * a key is "outbound" when the current ring names another owner. Results the
 * relay has published and awaits confirms for stay until they are confirmed
 * (then gone) or given back (then shipped): a result is published by one node.
 */
import type { TopologyParticipant, TopologyState, View } from "../topology/topology";
import { failpoint } from "../failpoint";
import { split } from "./split";
import type { DurableStore } from "../durable/durable-store";
import type { emptyShipment, Shipment, Store, StoredMessage } from "./store";

export interface ShipperOptions {
	/** The store shipped from; what the owner committed is forgotten through its journal. */
	durable: DurableStore;
	self: string;
	/** Sends a shipment to the owner; resolves once the owner has committed it, throws when it refused. */
	ship(node: string, viewId: string, shipment: Shipment): Promise<unknown>;
	/** Whether the local worker still holds this key's actor (then it is not shipped yet). */
	isHeld(key: string): boolean;
	batchRows: number;
	/** Bytes of payload and headers per call, below the transporter's packet limit. */
	batchBytes?: number;
	logger?: { warn(msg: string): void };
}

const KEYS_PER_ROUND = 500;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2000;

export class Shipper implements TopologyParticipant {
	private readonly options: ShipperOptions;
	private view: View | null = null;
	private active = false;
	private outbound = new Set<string>();
	private snapshot: { keys: Set<string>; done: () => void } | null = null;
	/** Shipped keys whose results were in flight on the relay: shipped again once those settle. */
	private readonly awaitingResults = new Set<string>();
	/** While leaving, a key is handed off only when its results in flight are settled too. */
	private leaving = false;
	private running = false;
	private retryTimer: NodeJS.Timeout | null = null;
	private retryMs = RETRY_MIN_MS;
	/** Rows handed to other nodes since start. */
	shippedRows = 0;
	shipments = 0;
	failures = 0;

	private readonly store: Store;

	constructor(options: ShipperOptions) {
		this.options = options;
		this.store = options.durable.store;
		this.store.onStored((rows) => this.noteStored(rows));
		this.store.onOutboxSettled(() => this.resultsSettled());
	}

	/** Keys waiting to be shipped. */
	get outboundKeys(): number {
		return this.outbound.size;
	}

	onView(view: View): void {
		this.view = view;
		this.snapshot = null;
		this.awaitingResults.clear();
		this.outbound = new Set(this.store.keysHeld().filter((key) => this.isForeign(key)));
		// A refusal backed off under the view before; in this one that owner may take the keys now.
		if (this.retryTimer) clearTimeout(this.retryTimer);
		this.retryTimer = null;
		this.retryMs = RETRY_MIN_MS;
		this.kick();
	}

	onStateChange(_from: TopologyState, to: TopologyState): void {
		this.active = to === "rehashing" || to === "ready" || to === "stopping";
		this.leaving = to === "stopping";
		this.kick();
	}

	/**
	 * Resolves when every key held for another owner at this moment has been shipped once.
	 * Writes already on their way to the store (a shipment or rows accepted under the previous
	 * view) are waited for first: they may hold keys that moved.
	 */
	async handoff(view: View): Promise<void> {
		await this.options.durable.idle();
		if (this.view !== view) return;
		for (const key of this.store.keysHeld()) if (this.isForeign(key)) this.outbound.add(key);
		const keys = new Set(this.outbound);
		if (keys.size === 0) return;
		return new Promise((resolve) => {
			this.snapshot = { keys, done: resolve };
			this.kick();
		});
	}

	/** Something for key was stored outside the message path (an actor record): ship it if foreign. */
	noteKey(key: string): void {
		if (!this.isForeign(key)) return;
		this.outbound.add(key);
		this.kick();
	}

	/** Start a round soon: rows arrived, or the worker released a key. */
	kick(): void {
		if (this.running || !this.active || this.retryTimer) return;
		this.running = true;
		setImmediate(() => void this.run());
	}

	private isForeign(key: string): boolean {
		const owner = this.view?.ring.ownerOf(key) ?? null;
		return owner !== null && owner !== this.options.self;
	}

	private noteStored(rows: StoredMessage[]): void {
		let added = false;
		for (const row of rows) {
			if (this.isForeign(row.key)) {
				this.outbound.add(row.key);
				added = true;
			}
		}
		if (added) this.kick();
	}

	private async run(): Promise<void> {
		try {
			while (this.active && this.view) {
				const groups = this.nextGroups();
				if (groups.size === 0) break;
				const view = this.view;
				for (const [owner, keys] of groups) {
					for (const key of keys) this.outbound.delete(key);
					try {
						await this.shipKeys(owner, view, keys);
						this.retryMs = RETRY_MIN_MS;
						for (const key of keys) if (this.store.resultsInFlight(key)) this.awaitingResults.add(key);
						this.settle(this.leaving ? keys.filter((key) => !this.awaitingResults.has(key)) : keys);
					} catch (err) {
						for (const key of keys) if (this.isForeign(key)) this.outbound.add(key);
						this.failures++;
						this.options.logger?.warn(`shipping ${keys.length} keys to ${owner} failed, retrying: ${(err as Error).message}`);
						this.retryLater();
						return;
					}
				}
			}
		} finally {
			this.running = false;
		}
		this.settle([]);
	}

	/** Up to a round of outbound keys whose actor is not held here, by owner. */
	private nextGroups(): Map<string, string[]> {
		const groups = new Map<string, string[]>();
		let taken = 0;
		for (const key of this.outbound) {
			if (taken >= KEYS_PER_ROUND) break;
			if (this.options.isHeld(key)) continue;
			const owner = this.view!.ring.ownerOf(key);
			if (owner === null || owner === this.options.self) {
				this.outbound.delete(key);
				this.snapshot?.keys.delete(key);
				continue;
			}
			let group = groups.get(owner);
			if (!group) groups.set(owner, (group = []));
			group.push(key);
			taken++;
		}
		return groups;
	}

	/** Ships everything held for keys, in parts that fit a transporter packet. */
	private async shipKeys(owner: string, view: View, keys: string[]): Promise<void> {
		const { store } = this;
		const whole = store.shipmentOf(keys);
		if (isEmpty(whole)) return;
		try {
			for (const part of split(whole, this.options.batchRows, this.options.batchBytes ?? 256 * 1024)) {
				await this.options.ship(owner, view.id, part);
				failpoint("ship.after-send");
				await this.options.durable.forget(part);
				this.shippedRows += part.messages.length;
				this.shipments++;
			}
		} finally {
			store.release(whole);
		}
	}

	/** Results in flight were confirmed (gone) or given back (to ship): look at their keys again. */
	private resultsSettled(): void {
		if (this.awaitingResults.size === 0) return;
		for (const key of this.awaitingResults) {
			if (this.store.resultsInFlight(key)) continue;
			this.awaitingResults.delete(key);
			if (this.isForeign(key)) this.outbound.add(key);
			else this.snapshot?.keys.delete(key);
		}
		this.kick();
	}

	private settle(keys: string[]): void {
		const snapshot = this.snapshot;
		if (!snapshot) return;
		for (const key of keys) snapshot.keys.delete(key);
		if (snapshot.keys.size === 0) {
			this.snapshot = null;
			snapshot.done();
		}
	}

	private retryLater(): void {
		this.retryTimer = setTimeout(() => {
			this.retryTimer = null;
			this.kick();
		}, this.retryMs);
		this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
	}

	stop(): void {
		this.active = false;
		if (this.retryTimer) clearTimeout(this.retryTimer);
		this.retryTimer = null;
	}
}

function isEmpty(shipment: ReturnType<typeof emptyShipment>): boolean {
	return shipment.messages.length + shipment.actors.length + shipment.processed.length + shipment.outbox.length + shipment.dead.length === 0;
}
