/**
 * The actor API, after Tarearbol.DynamicManager: what an application writes.
 */
import type { Headers } from "../store/store";
import type { TopologyState } from "../topology/topology";

export interface ActorSpec {
	id: string;
	payload?: unknown;
	/** Periodic perform interval in ms; 0 = perform only when messages arrive. */
	timeout?: number;
}

/** A message as a perform sees it. payload is parsed when the payload format is json. */
export interface ActorMessage {
	id: string;
	key: string;
	payload: unknown;
	headers: Headers | null;
	receivedAt: number;
	attempts: number;
}

/**
 * The return shapes of perform, with Tarearbol's meanings. In `{ timeout, result }`,
 * as in ActorSpec.timeout and the `actorTimeout` setting, timeout is the periodic
 * perform interval in ms, not a time limit (that is KEYHIVE_PERFORM_TIMEOUT_MS).
 */
export type PerformResult = { ok: unknown } | { replace: unknown; id?: string } | { timeout: number; result?: unknown } | "halt" | undefined | void;

export interface PerformContext {
	/** nodeID of the node performing. */
	readonly node: string;
	/** Which attempt this is for these messages (1 for the first). */
	readonly attempt: number;
	/** Queues a result for the outbox; it is committed with this perform, or not at all, and published with the performed message's id as messageId (lib/actors/result-id.ts). */
	publish(body: unknown, headers?: Headers): void;
}

export type TerminateReason = "halt" | "deleted" | "moved" | "stopped" | "replaced";

/** The callbacks of an application's actors. Only perform is required. */
export interface ActorBehaviour {
	childrenSpecs?(): Iterable<ActorSpec> | Promise<Iterable<ActorSpec>>;
	perform(id: string, payload: unknown, messages: ActorMessage[], ctx: PerformContext): PerformResult | Promise<PerformResult>;
	/** An actor starts on this node (spawned, moved here, or on demand); may return a new payload. */
	init?(id: string, payload: unknown): unknown;
	/** An actor stops on this node. */
	terminate?(id: string, reason: TerminateReason, payload: unknown): void;
	/** A perform did not settle within the perform timeout. */
	handleTimeout?(id: string, payload: unknown): void;
	handleStateChange?(state: TopologyState): void;
	/** Initial state of an actor activated on demand by a message. */
	spawn?(id: string): { payload?: unknown; timeout?: number };
}
