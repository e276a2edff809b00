/**
 * store: this node's SQLite store, and the handoff of rows between nodes.
 */
import type { Context, Service } from "moleculer";
import { validateAppend } from "../lib/store/append";
import {
	deadParams,
	type AppendParams,
	type AppendReply,
	type DeadListReply,
	type DeadParams,
	type DeadRequeueReply,
	type ReceiveParams,
	type ReceiveReply,
	type StoreStatsReply,
} from "../lib/contracts";
import { KeyhiveLifecycle, keyhiveNode } from "./keyhive";

interface StoreThis extends Service {
	pruneTimer?: NodeJS.Timeout;
}

/** Schemas are typed by their handlers' `this`; moleculer-runner loads the default export. */
const StoreService = {
	name: "store",
	mixins: [KeyhiveLifecycle],

	settings: {},

	actions: {
		/** Messages straight into the stores of their keys' owners (no RabbitMQ); answered once durable there. */
		append: {
			handler(this: StoreThis, ctx: Context<AppendParams>): Promise<AppendReply> {
				return keyhiveNode(this.broker).route(validateAppend(ctx.params));
			},
		},
		/** A shipment from another node; refused unless this node owns every key in it. */
		receive: {
			visibility: "public",
			handler(this: StoreThis, ctx: Context<ReceiveParams>): Promise<ReceiveReply> {
				return keyhiveNode(this.broker).receive(ctx.params.view, ctx.params.shipment);
			},
		},
		stats: {
			handler(this: StoreThis): StoreStatsReply {
				const node = keyhiveNode(this.broker);
				return {
					node: node.nodeID,
					pending: node.store.pendingCount,
					outbox: node.store.outboxCount,
					dead: node.store.deadCount,
					processedIds: node.store.processedCount,
					outboundKeys: node.shipper.outboundKeys,
					shippedRows: node.shipper.shippedRows,
					shipFailures: node.shipper.failures,
				};
			},
		},
		dead: {
			params: deadParams,
			async handler(this: StoreThis, ctx: Context<DeadParams>): Promise<DeadListReply | DeadRequeueReply> {
				const node = keyhiveNode(this.broker);
				const limit = ctx.params.limit ?? 20;
				if (ctx.params.requeue) {
					const { requeued, dropped } = await node.durable.requeueDead(limit);
					return { node: node.nodeID, requeued: requeued.length, dropped };
				}
				return { node: node.nodeID, count: node.store.deadCount, dead: node.store.dead(limit) };
			},
		},
	},

	started(this: StoreThis) {
		const node = keyhiveNode(this.broker);
		// A prune that cannot be stored now is simply done at the next tick.
		this.pruneTimer = setInterval(() => void node.durable.pruneProcessed().catch(() => undefined), 60_000);
	},

	stopped(this: StoreThis) {
		if (this.pruneTimer) clearInterval(this.pruneTimer);
	},
};

export default StoreService;
