/**
 * worker: the demo application. KEYHIVE_ACTORS actors key_1 … key_N; each
 * counts the messages of its key, keeps the count as its payload, and
 * publishes { id, key, node, n } for every message it performs.
 */
import type { ActorMessage, ActorSpec, PerformContext, PerformResult } from "../lib/actors/types";
import { DynamicManager } from "../lib/actors/dynamic-manager";
import { configOf, KeyhiveLifecycle, keyhiveNode } from "./keyhive";
import type { Service } from "moleculer";

const WorkerService = {
	name: "worker",
	mixins: [KeyhiveLifecycle, DynamicManager({ node: keyhiveNode })],

	methods: {
		*childrenSpecs(this: Service): Iterable<ActorSpec> {
			const config = configOf(this.broker);
			for (let i = 1; i <= config.actors; i++) yield { id: "key_" + i, payload: 0, timeout: config.actorTimeoutMs };
		},

		/** A message for a key with no actor (beyond key_N) starts a counter at 0. */
		spawn(this: Service): { payload: number; timeout: number } {
			return { payload: 0, timeout: configOf(this.broker).actorTimeoutMs };
		},

		perform(this: Service, id: string, payload: unknown, messages: ActorMessage[], ctx: PerformContext): PerformResult | Promise<PerformResult> {
			const workMs = configOf(this.broker).demoWorkMs;
			if (workMs > 0 && messages.length > 0) {
				return new Promise((resolve) => setTimeout(() => resolve(count(id, payload, messages, ctx)), workMs));
			}
			return count(id, payload, messages, ctx);
		},
	},
};

/** The demo's work: one more per message, and a result for each (bench:ingest runs it too). */
export function count(id: string, payload: unknown, messages: ActorMessage[], ctx: PerformContext): PerformResult {
	let n = typeof payload === "number" ? payload : 0;
	if (messages.length === 0) return { ok: n };
	for (const message of messages) {
		n++;
		ctx.publish({ id: message.id, key: id, node: ctx.node, n });
	}
	return { replace: n };
}

export default WorkerService;
