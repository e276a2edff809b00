/**
 * The worker service's actions. It has them from the DynamicManager mixin
 * (lib/actors/dynamic-manager.ts), so any service that mixes it in answers
 * these under its own name; keyhive's is `worker`.
 */
import type { ActionParams } from "moleculer";
import type { ActorInfo, RuntimeStats } from "../actors/runtime";
import type { TopologyState } from "../topology/topology";
import type { NoParams } from "./action";

export type { ActorInfo };

/** get and del name an actor. */
export interface ActorIdParams {
	id: string;
}
export const actorIdParams: ActionParams = { id: { type: "string", min: 1 } };

export interface ActorPutParams {
	id: string;
	payload?: unknown;
	/** Periodic perform interval in ms; 0 = on messages only. */
	timeout?: number;
}
export const actorPutParams: ActionParams = {
	id: { type: "string", min: 1 },
	payload: { type: "any", optional: true },
	timeout: { type: "number", integer: true, min: 0, optional: true },
};

export interface ActorDelReply {
	id: string;
	deleted: boolean;
}

export interface ActorCallParams {
	id: string;
	/** A string is the payload as is; anything else goes as JSON. */
	message: unknown;
	/** How long to wait for the perform, in ms (default 10 s). */
	timeout?: number;
}
export const actorCallParams: ActionParams = {
	id: { type: "string", min: 1 },
	message: { type: "any" },
	timeout: { type: "number", integer: true, positive: true, optional: true },
};

export interface ActorCastParams {
	id: string;
	message: unknown;
}
export const actorCastParams: ActionParams = { id: { type: "string", min: 1 }, message: { type: "any" } };

/** cast: the id the message was stored under. */
export interface ActorCastReply {
	id: string;
}

/** stats: the runtime's figures with the node and its topology state. */
export type ActorStatsReply = RuntimeStats & { node: string; state: TopologyState };

export interface WorkerActions {
	"worker.put": { params: ActorPutParams; reply: ActorInfo };
	"worker.del": { params: ActorIdParams; reply: ActorDelReply };
	"worker.get": { params: ActorIdParams; reply: ActorInfo | null };
	/** The result of the perform that processed the message (what perform returned as ok, replace or result). */
	"worker.call": { params: ActorCallParams; reply: unknown };
	"worker.cast": { params: ActorCastParams; reply: ActorCastReply };
	"worker.stats": { params: NoParams; reply: ActorStatsReply };
}
