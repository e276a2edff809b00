/**
 * keyhive's action contracts: every action's params and reply, declared once.
 * Services annotate their handlers with these types (and take the params
 * validator schemas from here); callers use callAction, whose reply type
 * follows from the action's name, so renaming a reply field fails type-checking
 * in every reader.
 */
import type { CallingOptions } from "moleculer";
import type { NoParams } from "./action";
import type { IngestActions } from "./ingest";
import type { StoreActions } from "./store";
import type { TopologyActions } from "./topology";
import type { WorkerActions } from "./worker";

export * from "./action";
export * from "./ingest";
export * from "./store";
export * from "./topology";
export * from "./worker";

/** Every action of keyhive's services, by its full name. */
export interface KeyhiveActions extends TopologyActions, StoreActions, WorkerActions, IngestActions {}

export type ActionName = keyof KeyhiveActions;
export type ParamsOf<A extends ActionName> = KeyhiveActions[A]["params"];
export type ReplyOf<A extends ActionName> = KeyhiveActions[A]["reply"];

/** Params and calling options; params may be left out where the action takes none. */
type CallArgs<A extends ActionName> =
	NoParams extends ParamsOf<A> ? [params?: ParamsOf<A>, opts?: CallingOptions] : [params: ParamsOf<A>, opts?: CallingOptions];

/** Whatever calls actions: a ServiceBroker or a Context. */
export interface ActionCaller {
	call(action: string, params?: unknown, opts?: CallingOptions): Promise<unknown>;
}

/** Calls a keyhive action; the params and the reply are typed by its contract. */
export function callAction<A extends ActionName>(caller: ActionCaller, action: A, ...[params, opts]: CallArgs<A>): Promise<ReplyOf<A>> {
	return caller.call(action, params ?? {}, opts) as Promise<ReplyOf<A>>;
}
