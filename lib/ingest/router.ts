/**
 * Puts entering rows where they belong before anyone is told they are stored:
 * each row is made durable at its key's owner (here through this node's journal,
 * elsewhere by that node's store.receive), and only then does the caller ack
 * RabbitMQ or answer. A row never waits on the disk of a node that does not own
 * it, so when a node is lost no other node holds rows of its keys that came in
 * before rows already performed elsewhere.
 */
import type { DurableStore } from "../durable/durable-store";
import type { EnteringRow } from "../durable/records";
import { split } from "../store/split";
import type { Shipment } from "../store/store";
import type { Topology } from "../topology/topology";

export interface RouterOptions {
	self: string;
	topology: Pick<Topology, "active" | "view" | "state">;
	durable: DurableStore;
	/** Hands rows to their owner's store; resolves with what it stored once that is durable there. */
	ship(node: string, viewId: string, shipment: Shipment): Promise<{ stored: number; duplicates: number }>;
	/** Rows per call to another node, and bytes (below the transporter's packet limit). */
	batchRows: number;
	batchBytes?: number;
}

/** No view with consensus to route by (starting, a minority, leaving): try again later. */
export class NotRoutableError extends Error {
	constructor(state: string) {
		super(`no view to route rows by (topology ${state})`);
		this.name = "NotRoutableError";
	}
}

export class Router {
	constructor(private readonly options: RouterOptions) {}

	/**
	 * Stores rows at their owners in the current view, all or (on an error) some of them:
	 * trying again is safe, as every store drops ids it holds. epoch marks rows routed by the
	 * inbox consumer, so an owner can refuse a consumer older than one it has heard from.
	 */
	async route(rows: EnteringRow[], epoch?: number): Promise<{ stored: number; duplicates: number }> {
		const { topology, self, durable } = this.options;
		if (rows.length === 0) return { stored: 0, duplicates: 0 };
		if (!topology.active) throw new NotRoutableError(topology.state);
		const view = topology.view;
		const byOwner = new Map<string, EnteringRow[]>();
		for (const row of rows) {
			const owner = view.ring.ownerOf(row.key) ?? self;
			let group = byOwner.get(owner);
			if (!group) byOwner.set(owner, (group = []));
			group.push(row);
		}
		const results = await Promise.all(
			[...byOwner].map(async ([owner, group]) => {
				if (owner === self) {
					const local = await durable.append(group);
					return { stored: local.stored.length, duplicates: local.duplicates };
				}
				return this.shipTo(owner, view.id, group, epoch);
			}),
		);
		return results.reduce((sum, r) => ({ stored: sum.stored + r.stored, duplicates: sum.duplicates + r.duplicates }), { stored: 0, duplicates: 0 });
	}

	private async shipTo(owner: string, viewId: string, rows: EnteringRow[], epoch: number | undefined): Promise<{ stored: number; duplicates: number }> {
		const now = Date.now();
		const messages = rows.map((r) => ({ ...r, headers: r.headers ?? null, receivedAt: r.receivedAt ?? now, attempts: r.attempts ?? 0 }));
		const total = { stored: 0, duplicates: 0 };
		for (const part of split({ messages, actors: [], processed: [] }, this.options.batchRows, this.options.batchBytes ?? 256 * 1024)) {
			const reply = await this.options.ship(owner, viewId, epoch === undefined ? part : { ...part, routed: epoch });
			total.stored += reply.stored;
			total.duplicates += reply.duplicates;
		}
		return total;
	}
}
