/**
 * Helpers of the actor runtime's unit tests: real SQLite stores in a temp dir,
 * a runtime driven the way lib/node.ts drives it, and a behaviour that records
 * its performs. Stores and runtimes made here are closed after the test file.
 */
import { after } from "node:test";
import { ActorRuntime, type RuntimeOptions } from "../../lib/actors/runtime";
import { readConfig } from "../../lib/config";
import { DurableStore } from "../../lib/durable/durable-store";
import type { ActorBehaviour, ActorMessage, PerformContext, PerformResult, TerminateReason } from "../../lib/actors/types";
import { Ring } from "../../lib/ring";
import { Store } from "../../lib/store/store";
import type { ActorRecord } from "../../lib/store/types";
import type { View } from "../../lib/topology/topology";
import { tempDir } from "./tmp";

export const tmp = tempDir("keyhive-actors-");
const runtimes: ActorRuntime[] = [];
const stores: Store[] = [];

after(async () => {
	for (const rt of runtimes) await rt.stop();
	for (const s of stores) s.close();
	tmp.cleanup();
});

export function viewOf(members: string[]): View {
	const ring = Ring.of(members);
	return { id: ring.id, ring, members: ring.members };
}

let storeCount = 0;
export function newStore(file?: string): Store {
	const store = new Store(file ?? tmp.file(`rt-${++storeCount}.sqlite`), { synchronous: "NORMAL" });
	stores.push(store);
	return store;
}

/** The runtime options lib/node.ts takes from the config, at their defaults (lib/config.ts is the one table of them). */
export function configDefaults(): Pick<RuntimeOptions, "maxAttempts" | "retryBaseMs" | "performTimeoutMs" | "maxBatch"> {
	const { maxAttempts, retryBaseMs, performTimeoutMs, maxBatch } = readConfig({});
	return { maxAttempts, retryBaseMs, performTimeoutMs, maxBatch };
}

export interface LogLines {
	info: string[];
	warn: string[];
	error: string[];
}

export function recordingLogger(): RuntimeOptions["logger"] & { lines: LogLines } {
	const lines: LogLines = { info: [], warn: [], error: [] };
	return {
		lines,
		info: (m: string) => lines.info.push(m),
		warn: (m: string) => lines.warn.push(m),
		error: (m: string) => lines.error.push(m),
	};
}

export interface Harness {
	rt: ActorRuntime;
	store: Store;
	/** The store's journal (a local one): what the runtime commits through. */
	durable: DurableStore;
	view: View;
	logger: ReturnType<typeof recordingLogger>;
}

/** Takes a runtime through a view change to ready on `view` and waits until its actors are active, as lib/node.ts does. */
export async function settle(rt: ActorRuntime, view: View): Promise<void> {
	rt.onStateChange("down", "rehashing");
	rt.onView(view);
	rt.onStateChange("rehashing", "ready");
	rt.onSettled(view);
	rt.start();
	await rt.whenReady();
}

/** An ActorRuntime driven the way lib/node.ts drives it, settled on a view of `members`; it commits through a local journal of `store`. */
export async function runtime(behaviour: ActorBehaviour, options: Partial<RuntimeOptions> & { members?: string[]; store?: Store } = {}): Promise<Harness> {
	const { members = ["n1"], store = newStore(), ...rest } = options;
	const durable = rest.durable ?? DurableStore.local(store);
	const logger = recordingLogger();
	const rt = new ActorRuntime({
		durable,
		self: "n1",
		behaviour,
		...configDefaults(),
		defaultInterval: 0,
		tickMs: 5,
		retryBaseMs: 10,
		performTimeoutMs: 3000,
		logger,
		...rest,
	});
	runtimes.push(rt);
	const view = viewOf(members);
	await settle(rt, view);
	return { rt, store: durable.store, durable, view, logger };
}

export interface PerformCall {
	id: string;
	payload: unknown;
	messages: ActorMessage[];
	attempt: number;
	at: number;
}

/** Records every perform; `respond` decides what it returns. */
export function recorder(respond: (call: PerformCall, ctx: PerformContext) => PerformResult | Promise<PerformResult> = () => ({ ok: true })) {
	const calls: PerformCall[] = [];
	const terminated: [string, TerminateReason][] = [];
	const behaviour: ActorBehaviour = {
		perform(id, payload, messages, ctx) {
			const call = { id, payload, messages, attempt: ctx.attempt, at: Date.now() };
			calls.push(call);
			return respond(call, ctx);
		},
		terminate(id, reason) {
			terminated.push([id, reason]);
		},
	};
	const ids = () => calls.flatMap((c) => c.messages.map((m) => m.id));
	const of = (key: string) => calls.filter((c) => c.id === key);
	return { behaviour, calls, terminated, ids, of };
}

export function send(store: Store, key: string, id: string, payload = id) {
	return store.append([{ id, key, payload }]).stored[0];
}

/** No row left in the messages table (read from SQLite, not from the pendingCount counter). */
export const drained = (store: Store) => () => store.scan(0, 1).length === 0;

/** An actor's record without its journal position, which tests of behaviour do not pin. */
export function stateOf(store: Store, id: string): Omit<ActorRecord, "version"> | undefined {
	const record = store.actor(id);
	if (!record) return undefined;
	const { version: _position, ...state } = record;
	return state;
}
