/**
 * DynamicManager: a Moleculer mixin in the spirit of `use Tarearbol.DynamicManager`.
 *
 * A service that mixes it in defines `perform` (and optionally childrenSpecs,
 * init, terminate, handleTimeout, handleStateChange, spawn) as methods, and
 * gets the actions put, del, get, call, cast and stats, each routed to the
 * node that owns the actor's id.
 */
import { randomUUID } from "crypto";
import { Errors, type Context, type Service, type ServiceBroker } from "moleculer";
import {
	actorCallParams,
	actorCastParams,
	actorIdParams,
	actorPutParams,
	type ActorCallParams,
	type ActorCastParams,
	type ActorCastReply,
	type ActorDelReply,
	type ActorIdParams,
	type ActorInfo,
	type ActorPutParams,
	type ActorStatsReply,
} from "../contracts";
import type { KeyhiveNode } from "../node";
import type { ActorRuntime } from "./runtime";
import type { ActorBehaviour } from "./types";

interface ManagerThis extends Service {
	keyhive(): KeyhiveNode;
	runtime(): ActorRuntime;
	route<T>(ctx: Context<{ id: string }>, action: string, local: () => Promise<T> | T): Promise<T>;
}

export interface DynamicManagerOptions {
	/** Gives the service's keyhive node (services pass their own lookup, so lib never imports services). */
	node(broker: ServiceBroker): KeyhiveNode;
}

/** Calls forwarded between nodes at most this often before the caller is told to retry. */
const MAX_HOPS = 2;
const DEFAULT_CALL_TIMEOUT_MS = 10_000;

function behaviourOf(service: Record<string, unknown>): ActorBehaviour {
	const method = <K extends keyof ActorBehaviour>(name: K) =>
		typeof service[name] === "function" ? ((service[name] as (...a: unknown[]) => unknown).bind(service) as ActorBehaviour[K]) : undefined;
	const perform = method("perform");
	if (!perform) throw new Error(`service ${String(service.name)} mixes in DynamicManager but has no perform method`);
	return {
		perform,
		childrenSpecs: method("childrenSpecs"),
		init: method("init"),
		terminate: method("terminate"),
		handleTimeout: method("handleTimeout"),
		handleStateChange: method("handleStateChange"),
		spawn: method("spawn"),
	};
}

export function DynamicManager(options: DynamicManagerOptions) {
	return {
		settings: {
			/** Periodic perform interval of actors whose spec names none, and of put without one. */
			actorTimeout: 1000,
		},

		actions: {
			put: {
				params: actorPutParams,
				handler(this: ManagerThis, ctx: Context<ActorPutParams>): Promise<ActorInfo> {
					return this.route(ctx, "put", () => this.runtime().put(ctx.params.id, ctx.params.payload ?? null, ctx.params.timeout));
				},
			},
			del: {
				params: actorIdParams,
				handler(this: ManagerThis, ctx: Context<ActorIdParams>): Promise<ActorDelReply> {
					return this.route(ctx, "del", async () => ({ id: ctx.params.id, deleted: await this.runtime().del(ctx.params.id) }));
				},
			},
			get: {
				params: actorIdParams,
				handler(this: ManagerThis, ctx: Context<ActorIdParams>): Promise<ActorInfo | null> {
					return this.route(ctx, "get", async () => {
						await this.runtime().whenReady();
						return this.runtime().get(ctx.params.id);
					});
				},
			},
			/** Sends a message to the actor and resolves with the result of the perform that processed it. */
			call: {
				params: actorCallParams,
				handler(this: ManagerThis, ctx: Context<ActorCallParams>): Promise<unknown> {
					return this.route(ctx, "call", async () => {
						const messageId = `call-${randomUUID()}`;
						const runtime = this.runtime();
						const result = runtime.awaitResult(messageId);
						const payload = typeof ctx.params.message === "string" ? ctx.params.message : JSON.stringify(ctx.params.message);
						await this.keyhive().route([{ id: messageId, key: ctx.params.id, payload }]);
						const timeoutMs = ctx.params.timeout ?? DEFAULT_CALL_TIMEOUT_MS;
						let timer: NodeJS.Timeout | undefined;
						const timeout = new Promise<never>((_, reject) => {
							timer = setTimeout(() => {
								runtime.forgetWaiter(messageId);
								reject(new Errors.RequestTimeoutError({ action: `${this.name}.call`, nodeID: this.broker.nodeID }));
							}, timeoutMs);
						});
						try {
							return await Promise.race([result, timeout]);
						} finally {
							clearTimeout(timer);
						}
					});
				},
			},
			/** Sends a message to the actor without waiting for it. */
			cast: {
				params: actorCastParams,
				async handler(this: ManagerThis, ctx: Context<ActorCastParams>): Promise<ActorCastReply> {
					const id = `cast-${randomUUID()}`;
					const payload = typeof ctx.params.message === "string" ? ctx.params.message : JSON.stringify(ctx.params.message);
					// Answered once the message is durable at the actor's owner.
					await this.keyhive().route([{ id, key: ctx.params.id, payload }]);
					return { id };
				},
			},
			stats: {
				handler(this: ManagerThis): ActorStatsReply {
					const node = this.keyhive();
					return { node: node.nodeID, state: node.state, ...this.runtime().stats() };
				},
			},
		},

		methods: {
			keyhive(this: ManagerThis) {
				return options.node(this.broker);
			},
			runtime(this: ManagerThis) {
				return this.keyhive().runtime!;
			},
			/** Runs local on the owner of ctx.params.id, forwarding the call there from anywhere else. */
			async route<T>(this: ManagerThis, ctx: Context<{ id: string }, { keyhiveHops?: number }>, action: string, local: () => Promise<T> | T): Promise<T> {
				const node = this.keyhive();
				const owner = node.topology.ownerOf(ctx.params.id);
				if (owner === node.nodeID) return local();
				const hops = ctx.meta.keyhiveHops ?? 0;
				if (owner === null || hops >= MAX_HOPS) {
					throw new Errors.MoleculerRetryableError(
						owner === null ? `no node owns ${ctx.params.id}: the cluster is ${node.state}` : `views are settling; retry ${action} ${ctx.params.id}`,
						503,
						"KEYHIVE_NO_OWNER",
					);
				}
				return ctx.call(`${this.fullName}.${action}`, ctx.params, { nodeID: owner, meta: { keyhiveHops: hops + 1 } }) as Promise<T>;
			},
		},

		created(this: ManagerThis) {
			const settings = this.settings as { actorTimeout: number };
			this.keyhive().attachRuntime(behaviourOf(this as unknown as Record<string, unknown>), {
				// settings.actorTimeout is Tarearbol's name: the periodic perform interval, not a timeout.
				defaultInterval: settings.actorTimeout,
			});
		},

		started(this: ManagerThis) {
			this.runtime().start();
		},

		stopped(this: ManagerThis) {
			return this.keyhive().stop();
		},
	};
}
