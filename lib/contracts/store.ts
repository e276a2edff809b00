/**
 * The store service's actions: what each takes and what it answers.
 */
import type { ActionParams } from "moleculer";
import type { AppendParams } from "../store/append";
import type { DeadMessage, Shipment } from "../store/store";
import type { NoParams } from "./action";

export type { AppendParams };

/** store.append: messages this node stored, and ids it had seen before. */
export interface AppendReply {
	stored: number;
	duplicates: number;
}

/** store.receive: a shipment from the node that owned its keys before. */
export interface ReceiveParams {
	view: string;
	shipment: Shipment;
}
export interface ReceiveReply {
	stored: number;
	duplicates: number;
}

/** store.stats: this node's store and shipper figures. */
export interface StoreStatsReply {
	node: string;
	pending: number;
	outbox: number;
	dead: number;
	processedIds: number;
	outboundKeys: number;
	shippedRows: number;
	shipFailures: number;
}

export interface DeadParams {
	/** Dead letters to list or requeue (default 20). */
	limit?: number;
	requeue?: boolean;
}
export const deadParams: ActionParams = {
	limit: { type: "number", integer: true, positive: true, optional: true, convert: true },
	requeue: { type: "boolean", optional: true, convert: true },
};

/** store.dead without requeue: the first dead letters, and how many there are. */
export interface DeadListReply {
	node: string;
	count: number;
	dead: DeadMessage[];
}

/** store.dead with requeue. */
export interface DeadRequeueReply {
	node: string;
	requeued: number;
	/** Dead letters whose id was processed since: deleted, not requeued. */
	dropped: number;
}

export interface StoreActions {
	"store.append": { params: AppendParams; reply: AppendReply };
	"store.receive": { params: ReceiveParams; reply: ReceiveReply };
	"store.stats": { params: NoParams; reply: StoreStatsReply };
	"store.dead": { params: DeadParams; reply: DeadListReply | DeadRequeueReply };
}
