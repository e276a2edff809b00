import assert from "node:assert/strict";
import * as fs from "fs";
import { after, describe, it } from "node:test";
import { LagHistogram } from "../../lib/actors/lag";
import { findOverlaps, parsePerformLog, PerformLog, type PerformRecord } from "../../lib/actors/perform-log";
import { ActorRuntime, type RuntimeOptions } from "../../lib/actors/runtime";
import type { ActorBehaviour, ActorMessage, PerformContext, PerformResult, TerminateReason } from "../../lib/actors/types";
import { TimerWheel, type WheelEntry } from "../../lib/actors/wheel";
import { Ring } from "../../lib/ring";
import { Store } from "../../lib/store/store";
import type { View } from "../../lib/topology/topology";
import { tempDir, onFile } from "../support/tmp";
import { deferred, isSettled, sleep, turns, waitFor, type Deferred } from "../support/wait";

const tmp = tempDir("keyhive-actors-");
const runtimes: ActorRuntime[] = [];
const stores: Store[] = [];

after(async () => {
	for (const rt of runtimes) await rt.stop();
	for (const s of stores) s.close();
	tmp.cleanup();
});

function viewOf(members: string[]): View {
	const ring = Ring.of(members);
	return { id: ring.id, ring, members: ring.members };
}

let storeCount = 0;
function newStore(file?: string): Store {
	const store = new Store(file ?? tmp.file(`rt-${++storeCount}.sqlite`), { synchronous: "NORMAL" });
	stores.push(store);
	return store;
}

interface LogLines {
	info: string[];
	warn: string[];
	error: string[];
}

function recordingLogger(): RuntimeOptions["logger"] & { lines: LogLines } {
	const lines: LogLines = { info: [], warn: [], error: [] };
	return {
		lines,
		info: (m: string) => lines.info.push(m),
		warn: (m: string) => lines.warn.push(m),
		error: (m: string) => lines.error.push(m),
	};
}

interface Harness {
	rt: ActorRuntime;
	store: Store;
	view: View;
	logger: ReturnType<typeof recordingLogger>;
}

/** An ActorRuntime driven the way lib/node.ts drives it, settled on a view of `members`. */
async function runtime(
	behaviour: ActorBehaviour,
	options: Partial<RuntimeOptions> & { members?: string[]; store?: Store } = {},
): Promise<Harness> {
	const { members = ["n1"], store = newStore(), ...rest } = options;
	const logger = recordingLogger();
	const rt = new ActorRuntime({
		store,
		self: "n1",
		behaviour,
		defaultTimeout: 0,
		tickMs: 5,
		retryBaseMs: 10,
		performTimeoutMs: 3000,
		logger,
		...rest,
	});
	runtimes.push(rt);
	const view = viewOf(members);
	rt.onStateChange("down", "rehashing");
	rt.onView(view);
	rt.onStateChange("rehashing", "ready");
	rt.onSettled(view);
	rt.start();
	await rt.whenReady();
	return { rt, store, view, logger };
}

interface PerformCall {
	id: string;
	payload: unknown;
	messages: ActorMessage[];
	attempt: number;
	at: number;
}

/** Records every perform; `respond` decides what it returns. */
function recorder(respond: (call: PerformCall, ctx: PerformContext) => PerformResult | Promise<PerformResult> = () => ({ ok: true })) {
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

function send(store: Store, key: string, id: string, payload = id) {
	return store.append([{ id, key, payload }]).stored[0];
}

/** No row left in the messages table (read from SQLite, not from the pendingCount counter). */
const drained = (store: Store) => () => store.scan(0, 1).length === 0;

describe("ActorRuntime: perform return shapes", () => {
	it("{ ok } commits the messages, keeps the payload, and resolves the caller", async () => {
		const rec = recorder((call) => ({ ok: { seen: call.messages.map((m) => m.payload) } }));
		rec.behaviour.spawn = () => ({ payload: { n: 1 } });
		const { rt, store } = await runtime(rec.behaviour, { payloadFormat: "json" });
		const result = rt.awaitResult("m1");
		store.append([{ id: "m1", key: "k", payload: "{\"a\":1}", headers: { h: "v" } }]);
		assert.deepEqual(await result, { seen: [{ a: 1 }] }, "json payloads are parsed for perform");
		await waitFor(drained(store), { message: "m1 committed" });
		const [call] = rec.calls;
		assert.deepEqual(call.payload, { n: 1 });
		assert.deepEqual(call.messages.map((m) => [m.id, m.key, m.payload, m.headers, m.attempts]), [["m1", "k", { a: 1 }, { h: "v" }, 0]]);
		assert.equal(call.attempt, 1);
		assert.deepEqual(rt.get("k")!.payload, { n: 1 });
		assert.equal(store.actor("k"), undefined, "nothing to save for { ok }");
		assert.equal(store.processedCount, 1);
		assert.equal(store.append([{ id: "m1", key: "k", payload: "again" }]).duplicates, 1);
		const stats = rt.stats();
		assert.equal(stats.processed, 1);
		assert.equal(stats.performs, 1);
		assert.equal(stats.actors, 1);
	});

	it("{ replace } saves the new payload with the commit and the next perform sees it", async () => {
		const rec = recorder((call) => ({ replace: ((call.payload as number) ?? 0) + call.messages.length }));
		const { rt, store } = await runtime(rec.behaviour);
		send(store, "k", "m1");
		await waitFor(() => rt.get("k")?.payload === 1, { message: "payload 1" });
		send(store, "k", "m2");
		await waitFor(() => rt.get("k")?.payload === 2, { message: "payload 2" });
		await waitFor(drained(store), { message: "committed" });
		assert.deepEqual(store.actor("k"), { id: "k", payload: 2, timeout: 0, deleted: false });
		assert.deepEqual(rec.calls.map((c) => c.payload), [null, 1]);
	});

	it("{ replace, id } creates the new actor and removes the old one", async () => {
		const rec = recorder((call) => (call.id === "old" ? { replace: { moved: true }, id: "new" } : { ok: call.payload }));
		const inits: [string, unknown][] = [];
		rec.behaviour.init = (id, payload) => {
			inits.push([id, payload]);
			return undefined;
		};
		rec.behaviour.spawn = (id) => ({ payload: `spawned ${id}`, timeout: 0 });
		const { rt, store } = await runtime(rec.behaviour);
		const result = rt.awaitResult("m1");
		send(store, "old", "m1");
		assert.deepEqual(await result, { moved: true });
		await waitFor(() => rt.get("new") !== null, { message: "new actor" });
		assert.equal(rt.get("old"), null);
		assert.deepEqual(rt.get("new")!.payload, { moved: true });
		assert.equal(store.actor("old")!.deleted, true);
		assert.deepEqual(store.actor("new"), { id: "new", payload: { moved: true }, timeout: 0, deleted: false });
		assert.deepEqual(rec.terminated, [["old", "replaced"]]);
		assert.deepEqual(inits, [["old", "spawned old"], ["new", { moved: true }]]);
		const next = rt.awaitResult("m2");
		send(store, "new", "m2");
		assert.deepEqual(await next, { moved: true }, "the new actor performs with the replaced payload");
	});

	it(
		"{ replace, id } onto an actor that already runs here leaves memory and store agreeing",
		async () => {
			const rec = recorder((call) => (call.id === "a" ? { replace: "from a", id: "b" } : { ok: call.payload }));
			rec.behaviour.childrenSpecs = () => [
				{ id: "a", payload: "a's own" },
				{ id: "b", payload: "b's own" },
			];
			const { rt, store } = await runtime(rec.behaviour);
			send(store, "a", "m1");
			await waitFor(drained(store), { message: "m1 committed" });
			await waitFor(() => rt.get("a") === null, { message: "a replaced" });
			assert.equal(store.actor("b")!.payload, "from a");
			assert.equal(rt.get("b")!.payload, store.actor("b")!.payload, "b in memory differs from b in the store");
		},
	);

	it("\"halt\" removes the actor; a new message activates it again on demand", async () => {
		const spawned: string[] = [];
		const rec = recorder((call) => (call.messages.some((m) => m.payload === "stop") ? "halt" : { ok: call.payload }));
		rec.behaviour.spawn = (id) => {
			spawned.push(id);
			return { payload: `fresh ${spawned.length}` };
		};
		const { rt, store } = await runtime(rec.behaviour);
		send(store, "k", "m1", "stop");
		await waitFor(() => rec.terminated.length === 1, { message: "halt" });
		assert.deepEqual(rec.terminated, [["k", "halt"]]);
		assert.equal(rt.get("k"), null);
		assert.equal(store.actor("k")!.deleted, true, "a tombstone keeps a spec actor from coming back");
		await waitFor(drained(store), { message: "halting message committed" });
		const again = rt.awaitResult("m2");
		send(store, "k", "m2", "hello");
		assert.equal(await again, "fresh 2");
		assert.deepEqual(spawned, ["k", "k"]);
		assert.notEqual(rt.get("k"), null);
	});

	it("{ timeout, result } changes the periodic interval, and timeout 0 stops it", async () => {
		let mode: "fast" | "stop" = "fast";
		const rec = recorder((call) => {
			if (call.messages.length === 0) return { ok: "tick" };
			return mode === "fast" ? { timeout: 20, result: "now fast" } : { timeout: 0, result: "stopped" };
		});
		const { rt, store } = await runtime(rec.behaviour);
		const ticks = () => rec.calls.filter((c) => c.messages.length === 0).length;
		const r1 = rt.awaitResult("m1");
		send(store, "k", "m1");
		assert.equal(await r1, "now fast");
		assert.equal(rt.get("k")!.timeout, 20);
		await waitFor(() => ticks() >= 5, { message: "periodic performs every 20 ms", timeoutMs: 3000 });
		await waitFor(() => store.actor("k")?.timeout === 20, { message: "timeout saved" });
		mode = "stop";
		const r2 = rt.awaitResult("m2");
		send(store, "k", "m2");
		assert.equal(await r2, "stopped");
		await turns(5);
		const stoppedAt = ticks();
		await sleep(150);
		assert.equal(ticks(), stoppedAt, "no periodic perform after { timeout: 0 }");
		assert.equal(store.actor("k")!.timeout, 0);
	});
});

describe("ActorRuntime: dealing and scheduling", () => {
	it("performs each key's messages in stamp order, never two performs of one key at once", async () => {
		const inflight = new Map<string, number>();
		let maxPerKey = 0;
		let maxOverall = 0;
		let overall = 0;
		const rec = recorder(async (call) => {
			const now = (inflight.get(call.id) ?? 0) + 1;
			inflight.set(call.id, now);
			overall++;
			maxPerKey = Math.max(maxPerKey, now);
			maxOverall = Math.max(maxOverall, overall);
			await sleep(Math.random() * 4);
			inflight.set(call.id, inflight.get(call.id)! - 1);
			overall--;
			return { ok: true };
		});
		const { store } = await runtime(rec.behaviour, { maxBatch: 4 });
		const keys = Array.from({ length: 8 }, (_, i) => `k${i}`);
		const expected = new Map(keys.map((k) => [k, [] as string[]]));
		for (let round = 0; round < 10; round++) {
			const batch = [];
			for (let i = 0; i < 30; i++) {
				const key = keys[Math.floor(Math.random() * keys.length)];
				const id = `${key}-${round}-${i}`;
				expected.get(key)!.push(id);
				batch.push({ id, key, payload: id });
			}
			store.append(batch);
			await sleep(2);
		}
		await waitFor(drained(store), { message: "all 300 performed", timeoutMs: 10_000, detail: () => `${store.pendingCount} pending` });
		assert.equal(maxPerKey, 1, "two performs of one key overlapped");
		assert.ok(maxOverall > 1, "keys ran concurrently");
		for (const key of keys) {
			const performed = rec.of(key).flatMap((c) => c.messages.map((m) => m.id));
			assert.deepEqual(performed, expected.get(key), `order of ${key}`);
		}
		assert.equal(new Set(rec.ids()).size, 300);
		assert.equal(rec.ids().length, 300, "no message performed twice");
		assert.ok(rec.calls.every((c) => c.messages.length <= 4), "maxBatch honoured");
	});

	it("runs many keys at once", async () => {
		let inflight = 0;
		const all = deferred();
		const rec = recorder(async () => {
			inflight++;
			await all.promise;
			inflight--;
			return { ok: true };
		});
		const { store } = await runtime(rec.behaviour);
		store.append(Array.from({ length: 50 }, (_, i) => ({ id: `m${i}`, key: `key_${i}`, payload: "x" })));
		await waitFor(() => inflight === 50, { message: "50 performs in flight together", detail: () => `${inflight} in flight` });
		all.resolve();
		await waitFor(drained(store), { message: "all committed" });
	});

	it("a row shipped in with an older stamp goes before newer rows still waiting", async () => {
		const gate = deferred();
		const rec = recorder(async (call) => {
			if (call.messages[0].id === "first") await gate.promise;
			return { ok: true };
		});
		const { store } = await runtime(rec.behaviour);
		const first = send(store, "k", "first");
		await waitFor(() => rec.calls.length === 1, { message: "first in flight" });
		send(store, "k", "newer");
		store.receive({
			messages: [{ id: "older", key: "k", stamp: first.stamp + 1, payload: "o", headers: null, receivedAt: Date.now(), attempts: 0 }],
			actors: [],
			processed: [],
		});
		gate.resolve();
		await waitFor(drained(store), { message: "all performed" });
		assert.deepEqual(rec.ids(), ["first", "older", "newer"]);
	});

	it("periodic performs come about every timeout ms; timeout 0 performs only on messages", async () => {
		const rec = recorder(() => ({ ok: true }));
		rec.behaviour.childrenSpecs = () => [
			{ id: "periodic", payload: 1, timeout: 40 },
			{ id: "quiet", payload: 2, timeout: 0 },
		];
		const { store } = await runtime(rec.behaviour);
		const periodic = () => rec.of("periodic").filter((c) => c.messages.length === 0);
		await waitFor(() => periodic().length >= 8, { message: "8 periodic performs", timeoutMs: 3000 });
		const times = periodic().map((c) => c.at);
		const gaps = times.slice(1).map((t, i) => t - times[i]);
		const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
		assert.ok(mean >= 35 && mean <= 120, `mean gap ${mean.toFixed(1)} ms for timeout 40 (${gaps.join(", ")})`);
		assert.ok(Math.min(...gaps) >= 30, `a gap of ${Math.min(...gaps)} ms is shorter than the timeout allows`);
		assert.equal(rec.of("quiet").length, 0, "timeout 0: no perform without messages");
		send(store, "quiet", "q1");
		await waitFor(() => rec.of("quiet").length === 1, { message: "quiet performs on its message" });
		await sleep(100);
		assert.equal(rec.of("quiet").length, 1, "and only then");
	});

	it("activates an unknown key on demand with spawn()", async () => {
		const spawned: string[] = [];
		const rec = recorder((call) => ({ ok: call.payload }));
		rec.behaviour.spawn = (id) => {
			spawned.push(id);
			return { payload: { made: id }, timeout: 0 };
		};
		const { rt, store } = await runtime(rec.behaviour);
		assert.equal(rt.get("nobody"), null);
		const result = rt.awaitResult("m1");
		send(store, "nobody", "m1");
		assert.deepEqual(await result, { made: "nobody" });
		assert.deepEqual(spawned, ["nobody"]);
		assert.deepEqual(rt.get("nobody")!.payload, { made: "nobody" });
		send(store, "nobody", "m2");
		await waitFor(drained(store), { message: "second message" });
		assert.deepEqual(spawned, ["nobody"], "spawned once");
	});

	it("messages stored before the view settles are performed once it does", async () => {
		const store = newStore();
		store.append([{ id: "early-1", key: "k", payload: "a" }, { id: "early-2", key: "k", payload: "b" }]);
		const rec = recorder();
		await runtime(rec.behaviour, { store });
		await waitFor(drained(store), { message: "early rows performed" });
		assert.deepEqual(rec.ids(), ["early-1", "early-2"]);
	});
});

describe("ActorRuntime: failures", () => {
	it("retries a throwing perform with backoff, dead-letters after maxAttempts with the error, then carries on", async () => {
		const rec = recorder((call) => {
			if (call.messages.some((m) => m.payload === "poison")) throw new Error("cannot digest poison");
			return { ok: "fine" };
		});
		const { rt, store } = await runtime(rec.behaviour, { maxAttempts: 3, retryBaseMs: 25 });
		const poisoned = rt.awaitResult("bad");
		send(store, "k", "bad", "poison");
		await assert.rejects(poisoned, /cannot digest poison/);
		assert.equal(store.deadCount, 1);
		const [dead] = store.dead(10);
		assert.equal(dead.id, "bad");
		assert.equal(dead.reason, "cannot digest poison");
		assert.equal(dead.attempts, 3);
		const attempts = rec.of("k");
		assert.deepEqual(attempts.map((c) => c.attempt), [1, 2, 3]);
		assert.deepEqual(attempts.map((c) => c.messages[0].attempts), [0, 1, 2]);
		const gaps = [attempts[1].at - attempts[0].at, attempts[2].at - attempts[1].at];
		assert.ok(gaps[0] >= 20, `first retry after ${gaps[0]} ms (base 25)`);
		assert.ok(gaps[1] >= 45, `second retry after ${gaps[1]} ms (doubled)`);
		const stats = rt.stats();
		assert.equal(stats.failures, 3);
		assert.equal(stats.dead, 1);
		const ok = rt.awaitResult("good");
		send(store, "k", "good", "food");
		assert.equal(await ok, "fine", "the actor carries on");
		await waitFor(drained(store), { message: "good committed" });
		assert.notEqual(rt.get("k"), null);
	});

	it(
		"a message that arrives while a poisoned batch backs off is not dead-lettered with it",
		async () => {
			const rec = recorder((call) => {
				if (call.messages.some((m) => m.payload === "poison")) throw new Error("poison");
				return { ok: true };
			});
			const { store } = await runtime(rec.behaviour, { maxAttempts: 3, retryBaseMs: 40 });
			send(store, "k", "bad", "poison");
			await waitFor(() => rec.calls.length === 1, { message: "first failure" });
			send(store, "k", "innocent", "fine");
			await waitFor(() => store.deadCount >= 1, { message: "poison dead-lettered", timeoutMs: 3000 });
			await waitFor(drained(store), { message: "innocent handled", timeoutMs: 3000 });
			const dead = store.dead(10);
			assert.deepEqual(dead.map((d) => d.id), ["bad"], `dead: ${dead.map((d) => `${d.id} after ${d.attempts} attempts`).join(", ")}`);
			assert.ok(rec.calls.some((c) => c.messages.length === 1 && c.messages[0].id === "innocent"), "innocent performed on its own");
		},
	);

	it("a perform that never settles times out, calls handleTimeout, and its messages are retried", async () => {
		const timeouts: [string, unknown][] = [];
		let first = true;
		const rec = recorder(() => {
			if (first) {
				first = false;
				return new Promise<PerformResult>(() => undefined);
			}
			return { ok: "second time" };
		});
		rec.behaviour.handleTimeout = (id, payload) => timeouts.push([id, payload]);
		rec.behaviour.spawn = () => ({ payload: "p" });
		const { rt, store } = await runtime(rec.behaviour, { performTimeoutMs: 150, retryBaseMs: 10 });
		const result = rt.awaitResult("m1");
		send(store, "k", "m1");
		assert.equal(await result, "second time");
		assert.deepEqual(timeouts, [["k", "p"]]);
		assert.equal(rt.stats().timeouts, 1);
		assert.equal(rec.calls.length, 2);
		assert.ok(rec.calls[1].at - rec.calls[0].at >= 140, "retried only after the perform timeout");
		assert.equal(rec.calls[1].attempt, 2);
		await waitFor(drained(store), { message: "committed" });
		assert.equal(store.deadCount, 0);
	});
});

describe("ActorRuntime: put, get, del, publish", () => {
	it("put creates or replaces, get reads, del removes and dead-letters pending messages", async () => {
		const gate = deferred();
		const rec = recorder(async (call) => {
			if (call.messages.some((m) => m.id === "m1")) await gate.promise;
			return { ok: true };
		});
		const { rt, store } = await runtime(rec.behaviour, { defaultTimeout: 0 });
		const created = await rt.put("a", { v: 1 });
		assert.deepEqual([created.id, created.payload, created.timeout, created.node, created.busy, created.pending], ["a", { v: 1 }, 0, "n1", false, 0]);
		assert.deepEqual(store.actor("a"), { id: "a", payload: { v: 1 }, timeout: 0, deleted: false });
		const replaced = await rt.put("a", { v: 2 }, 1000);
		assert.deepEqual([replaced.payload, replaced.timeout], [{ v: 2 }, 1000]);
		assert.deepEqual(rt.get("a")!.payload, { v: 2 });
		assert.deepEqual(store.actor("a"), { id: "a", payload: { v: 2 }, timeout: 1000, deleted: false });
		assert.equal((await rt.put("a", { v: 3 })).timeout, 1000, "put without a timeout keeps the current one");

		// m1 is in a perform; m2 and m3 wait behind it.
		send(store, "a", "m1");
		await waitFor(() => rt.get("a")?.busy === true, { message: "a busy" });
		send(store, "a", "m2");
		send(store, "a", "m3");
		const m3 = rt.awaitResult("m3");
		const deleting = rt.del("a");
		assert.equal(await isSettled(deleting), false, "del waits for the perform in flight");
		gate.resolve();
		assert.equal(await deleting, true);
		await assert.rejects(m3, /actor deleted/);
		assert.equal(rt.get("a"), null);
		assert.equal(store.actor("a")!.deleted, true);
		assert.deepEqual(store.dead(10).map((d) => [d.id, d.reason]), [["m2", "actor deleted"], ["m3", "actor deleted"]]);
		assert.equal(store.pendingCount, 0);
		assert.equal(store.processedCount, 1, "m1 was performed before the delete");
		assert.deepEqual(rec.terminated, [["a", "deleted"]]);
		assert.deepEqual(rec.ids(), ["m1"]);
		assert.equal(await rt.del("never-was"), false);
	});

	it("put and del refuse keys this node does not own", async () => {
		const view = viewOf(["n1", "n2"]);
		const foreign = Array.from({ length: 100 }, (_, i) => `key_${i}`).find((k) => view.ring.ownerOf(k) === "n2")!;
		const { rt } = await runtime(recorder().behaviour, { members: ["n1", "n2"] });
		await assert.rejects(rt.put(foreign, 1), /does not own/);
		await assert.rejects(rt.del(foreign), /does not own/);
	});

	it("ctx.publish goes to the outbox in the same commit as the delete", async () => {
		const rec = recorder((call, ctx) => {
			for (const m of call.messages) ctx.publish({ echo: m.payload }, { key: call.id });
			return { ok: true };
		});
		const { store } = await runtime(rec.behaviour);
		const violations: string[] = [];
		const ids = Array.from({ length: 200 }, (_, i) => `m${i}`);
		store.append(ids.slice(0, 100).map((id, i) => ({ id, key: `k${i % 10}`, payload: id })));
		store.append(ids.slice(100).map((id, i) => ({ id, key: `k${i % 10}`, payload: id })));
		// From here on, after every turn: each message is either still pending or its result is in the outbox, never both or neither.
		let watching = true;
		const watch = (async () => {
			while (watching) {
				const pending = new Set(store.scan(0, 1000).map((r) => r.id));
				const published = new Set(store.outbox(1000).map((o) => (JSON.parse(o.body) as { echo: string }).echo));
				for (const id of ids) if (pending.has(id) === published.has(id)) violations.push(`${id}: pending ${pending.has(id)}, published ${published.has(id)}`);
				await new Promise((r) => setImmediate(r));
			}
		})();
		await waitFor(drained(store), { message: "all performed" });
		watching = false;
		await watch;
		assert.deepEqual(violations.slice(0, 5), []);
		const outbox = store.outbox(1000);
		assert.equal(outbox.length, 200);
		assert.deepEqual(outbox[0].headers, { key: outbox[0].headers!.key });
	});

	it("what a failed perform published is discarded; the successful retry publishes once", async () => {
		let attempt = 0;
		const rec = recorder((_call, ctx) => {
			ctx.publish(`attempt ${++attempt}`);
			if (attempt === 1) throw new Error("failed after publishing");
			return { ok: true };
		});
		const { store } = await runtime(rec.behaviour);
		send(store, "k", "m1");
		await waitFor(drained(store), { message: "retried and committed" });
		assert.deepEqual(store.outbox(10).map((o) => o.body), ["\"attempt 2\""]);
	});
});

describe("ActorRuntime: ownership and views", () => {
	const TWO = viewOf(["n1", "n2"]);
	const SPEC_KEYS = Array.from({ length: 200 }, (_, i) => `key_${i + 1}`);

	it("spawns childrenSpecs actors only for keys this node owns", async () => {
		const rec = recorder();
		rec.behaviour.childrenSpecs = async () => SPEC_KEYS.map((id) => ({ id, payload: { spec: id }, timeout: 0 }));
		const { rt } = await runtime(rec.behaviour, { members: ["n1", "n2"] });
		const mine = SPEC_KEYS.filter((k) => TWO.ring.ownerOf(k) === "n1");
		assert.ok(mine.length > 50 && mine.length < 150);
		for (const k of SPEC_KEYS) {
			if (TWO.ring.ownerOf(k) === "n1") assert.deepEqual(rt.get(k)?.payload, { spec: k });
			else assert.equal(rt.get(k), null, `${k} belongs to n2`);
		}
		assert.equal(rt.stats().actors, mine.length);
	});

	it("a stored record wins over the spec, and a tombstone keeps the spec actor away", async () => {
		const store = newStore();
		store.commit({
			actors: [
				{ id: "saved", payload: "from store", timeout: 0, deleted: false },
				{ id: "halted", payload: null, timeout: 0, deleted: true },
			],
		});
		const rec = recorder();
		rec.behaviour.childrenSpecs = () => [
			{ id: "saved", payload: "from spec" },
			{ id: "halted", payload: "from spec" },
			{ id: "plain", payload: "from spec" },
		];
		const { rt } = await runtime(rec.behaviour, { store });
		assert.equal(rt.get("saved")!.payload, "from store");
		assert.equal(rt.get("halted"), null);
		assert.equal(rt.get("plain")!.payload, "from spec");
	});

	it("a view that moves keys away releases idle actors at once and waits for a busy one", async () => {
		const gate = deferred();
		const rec = recorder(async (call) => {
			if (call.messages.some((m) => m.id === "slow")) await gate.promise;
			return { ok: true };
		});
		rec.behaviour.childrenSpecs = () => SPEC_KEYS.map((id) => ({ id, payload: 0, timeout: 0 }));
		const { rt, store } = await runtime(rec.behaviour);
		const moving = SPEC_KEYS.filter((k) => TWO.ring.ownerOf(k) === "n2");
		const staying = SPEC_KEYS.filter((k) => TWO.ring.ownerOf(k) === "n1");
		const [busy, idle] = moving;
		send(store, busy, "slow");
		await waitFor(() => rt.get(busy)?.busy === true, { message: "busy actor" });

		rt.onView(TWO);
		rt.onStateChange("ready", "rehashing");
		assert.equal(rt.get(idle), null, "idle moved actor released at once");
		assert.equal(rt.holds(idle), false);
		assert.ok(rec.terminated.some(([id, reason]) => id === idle && reason === "moved"));
		assert.equal(rt.holds(busy), true, "busy actor held until its perform is over");
		for (const k of staying) assert.notEqual(rt.get(k), null, `${k} stays`);
		const handoff = rt.handoff(TWO);
		assert.equal(await isSettled(handoff), false, "handoff waits for the busy actor");

		send(store, idle, "for-n2");
		send(store, busy, "also-for-n2");
		gate.resolve();
		await handoff;
		assert.equal(rt.holds(busy), false);
		assert.equal(rt.get(busy), null);
		assert.equal(store.messagesOf(busy).map((r) => r.id).join(), "also-for-n2", "the slow row is committed, the new one waits to ship");
		assert.equal(store.messagesOf(idle).length, 1);
		rt.onStateChange("rehashing", "ready");
		rt.onSettled(TWO);
		await rt.whenReady();
		send(store, staying[0], "still-mine");
		await waitFor(() => store.messagesOf(staying[0]).length === 0, { message: "staying key performs" });
		await sleep(50);
		assert.ok(!rec.ids().includes("for-n2") && !rec.ids().includes("also-for-n2"), "moved keys are not performed here");
		assert.equal(rt.get(idle), null, "nor re-activated on demand");
	});

	it("a key that comes back while its actor is still leaving restarts after the handoff, with its waiting rows", async () => {
		const gate = deferred();
		const rec = recorder(async (call) => {
			if (call.messages.some((m) => m.id === "slow")) await gate.promise;
			return { replace: ((call.payload as number) ?? 0) + call.messages.length };
		});
		const { rt, store } = await runtime(rec.behaviour);
		const key = SPEC_KEYS.find((k) => TWO.ring.ownerOf(k) === "n2")!;
		send(store, key, "slow");
		await waitFor(() => rt.get(key)?.busy === true, { message: "busy" });
		rt.onView(TWO);
		send(store, key, "while-leaving");
		const back = viewOf(["n1"]);
		rt.onView(back);
		const handoff = rt.handoff(back);
		assert.equal(await isSettled(handoff), false, "the leaving actor still has to finish");
		gate.resolve();
		await handoff;
		rt.onSettled(back);
		await rt.whenReady();
		await waitFor(drained(store), { message: "row stored while leaving performed" });
		assert.deepEqual(rec.ids(), ["slow", "while-leaving"]);
		assert.equal(rt.get(key)!.payload, 2);
	});
});

describe("ActorRuntime: hooks", () => {
	it("handleStateChange hears every state; init may change the payload; terminate hears the stop", async () => {
		const states: string[] = [];
		const rec = recorder((call) => ({ ok: call.payload }));
		rec.behaviour.handleStateChange = (state) => states.push(state);
		rec.behaviour.init = (id, payload) => ({ initialised: id, from: payload });
		rec.behaviour.childrenSpecs = () => [{ id: "a", payload: 1 }];
		const { rt, store } = await runtime(rec.behaviour);
		assert.deepEqual(states, ["rehashing", "ready"]);
		assert.deepEqual(rt.get("a")!.payload, { initialised: "a", from: 1 });
		const result = rt.awaitResult("m1");
		send(store, "a", "m1");
		assert.deepEqual(await result, { initialised: "a", from: 1 });
		await rt.stop();
		assert.deepEqual(rec.terminated, [["a", "stopped"]]);
		assert.equal(rt.get("a"), null);
	});
});

describe("ActorRuntime: restart", () => {
	it("a second runtime on the same file resumes from committed state; nothing is performed twice", async () => {
		const file = tmp.file("restart.sqlite");
		const performedCount = new Map<string, number>();
		const behaviour: ActorBehaviour = {
			childrenSpecs: () => ["a", "b", "c", "d", "e"].map((id) => ({ id, payload: 0, timeout: 0 })),
			async perform(_id, payload, messages) {
				await sleep(5);
				for (const m of messages) performedCount.set(m.id, (performedCount.get(m.id) ?? 0) + 1);
				return { replace: (payload as number) + messages.length };
			},
		};
		const store1 = new Store(file, { synchronous: "NORMAL" });
		const first = await runtime(behaviour, { store: store1, maxBatch: 2 });
		const rows = [];
		for (let i = 0; i < 20; i++) for (const k of ["a", "b", "c", "d", "e"]) rows.push({ id: `${k}-${i}`, key: k, payload: "x" });
		store1.append(rows);
		await waitFor(() => store1.processedCount >= 30, { message: "some processed before the stop", intervalMs: 1 });
		await first.rt.stop();
		const done = store1.processedCount;
		assert.ok(done < 100, "the stop came before the end");
		store1.close();

		const logFile = tmp.file("perform.log");
		const store2 = newStore(file);
		assert.equal(store2.pendingCount + store2.processedCount, 100);
		const second = await runtime(behaviour, { store: store2, maxBatch: 2, performLog: logFile });
		await waitFor(drained(store2), { message: "the rest performed", timeoutMs: 8000 });
		await waitFor(() => second.rt.stats().busy === 0, { message: "idle" });
		assert.equal(performedCount.size, 100);
		const twice = [...performedCount].filter(([, n]) => n !== 1);
		assert.deepEqual(twice, [], "performed more than once");
		for (const k of ["a", "b", "c", "d", "e"]) {
			assert.equal(store2.actor(k)!.payload, 20, `${k} counted every message once, across the restart`);
			assert.equal(second.rt.get(k)!.payload, 20);
		}
		await second.rt.stop();
		const records = parsePerformLog(fs.readFileSync(logFile, "utf8"));
		assert.equal(records.reduce((sum, r) => sum + r.messages, 0), 100 - done, "one log line per perform of the second runtime");
		assert.ok(records.every((r) => r.node === "n1" && r.end >= r.start));
		assert.deepEqual(findOverlaps(records), []);
	});
});

describe("ActorRuntime: commit failures (fault injected with a SQLite trigger)", () => {
	it(
		"a perform whose commit fails does not hold back other keys",
		async () => {
			const rec = recorder((call, ctx) => {
				if (call.id === "poison") ctx.publish("boom");
				return { ok: true };
			});
			const store = newStore();
			onFile(store.file, `CREATE TRIGGER fail_boom BEFORE INSERT ON outbox WHEN NEW.body = '"boom"' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;`);
			await runtime(rec.behaviour, { store, maxAttempts: 3 });
			store.append([
				{ id: "p1", key: "poison", payload: "x" },
				...Array.from({ length: 5 }, (_, i) => ({ id: `ok${i}`, key: `k${i}`, payload: "x" })),
			]);
			const others = Array.from({ length: 5 }, (_, i) => `k${i}`);
			await waitFor(() => others.every((k) => store.messagesOf(k).length === 0), {
				message: "every other key committed",
				timeoutMs: 1000,
				detail: () => `${store.scan(0, 100).length} rows left, pendingCount says ${store.pendingCount}`,
			});
		},
	);

	it(
		"a message whose results can never be committed is dead-lettered after maxAttempts, not retried forever",
		async () => {
			const rec = recorder((_call, ctx) => {
				ctx.publish(undefined);
				return { ok: true };
			});
			const { store } = await runtime(rec.behaviour, { maxAttempts: 3, retryBaseMs: 5 });
			send(store, "k", "m1");
			await waitFor(drained(store), { message: "m1 handled (dead-lettered or committed)", timeoutMs: 1000, detail: () => `${rec.calls.length} performs so far` });
		},
	);

	it(
		"a failed commit leaves the actor's payload as committed",
		async () => {
			const rec = recorder((call) => ({ replace: (call.payload as number) + call.messages.length }));
			rec.behaviour.spawn = () => ({ payload: 0 });
			const store = newStore();
			onFile(store.file, `CREATE TRIGGER fail_counter BEFORE INSERT ON actors WHEN NEW.id = 'counter' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;`);
			const { logger } = await runtime(rec.behaviour, { store, maxAttempts: 50 });
			send(store, "counter", "m1");
			await waitFor(() => logger.lines.error.length >= 1, { message: "a failed commit" });
			onFile(store.file, "DROP TRIGGER fail_counter;");
			await waitFor(drained(store), { message: "m1 committed once the trigger is gone" });
			assert.equal(store.actor("counter")!.payload, 1, "one message counted once");
			assert.ok(rec.calls.every((c) => c.payload === 0), `performs saw payloads ${rec.calls.map((c) => c.payload).join(", ")}`);
		},
	);

	it(
		"messages waiting behind a perform that halts are performed, in order, by the actor activated again",
		async () => {
			const gate = deferred();
			const rec = recorder(async (call) => {
				if (call.messages.some((m) => m.payload === "halt")) {
					await gate.promise;
					return "halt";
				}
				return { ok: true };
			});
			rec.behaviour.spawn = () => ({ payload: "again" });
			const { store } = await runtime(rec.behaviour);
			send(store, "k", "m1", "halt");
			await waitFor(() => rec.calls.length === 1, { message: "halting perform in flight" });
			send(store, "k", "m2");
			send(store, "k", "m3");
			gate.resolve();
			await waitFor(() => store.messagesOf("k").length === 0, {
				message: "m2 and m3 performed",
				timeoutMs: 1000,
				detail: () => `pending ${store.messagesOf("k").map((r) => r.id).join(",")}`,
			});
			send(store, "k", "m4");
			await waitFor(drained(store), { message: "m4 performed" });
			assert.deepEqual(rec.ids(), ["m1", "m2", "m3", "m4"]);
		},
	);
});

describe("TimerWheel", () => {
	interface E extends WheelEntry {
		name: string;
	}
	const entry = (name: string): E => ({ name, due: 0 });

	it("fires entries once, in due order, not before their time", () => {
		const wheel = new TimerWheel<E>(10, 8, 0);
		const fired: string[] = [];
		const a = entry("a");
		const b = entry("b");
		const c = entry("c");
		wheel.schedule(b, 30, 0);
		wheel.schedule(a, 10, 0);
		wheel.schedule(c, 200, 0); // beyond one turn of the 8-slot wheel
		wheel.advance(25, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a"]);
		wheel.advance(35, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a", "b"]);
		wheel.advance(195, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a", "b"], "c is not due after one turn of the wheel");
		wheel.advance(205, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a", "b", "c"]);
		wheel.advance(1000, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a", "b", "c"], "each fires once");
	});

	it("cancel and reschedule leave one firing at the new time; late firings report their lateness", () => {
		const wheel = new TimerWheel<E>(10, 16, 0);
		const fired: [string, number][] = [];
		const a = entry("a");
		wheel.schedule(a, 20, 0);
		wheel.schedule(a, 50, 0);
		const b = entry("b");
		wheel.schedule(b, 20, 0);
		wheel.cancel(b);
		wheel.advance(40, (e, late) => fired.push([e.name, late]));
		assert.equal(fired.length, 0);
		wheel.advance(75, (e, late) => fired.push([e.name, late]));
		assert.deepEqual(fired, [["a", 25]]);
	});

	it(
		"never fires an entry before its delay has passed",
		() => {
			const wheel = new TimerWheel<E>(10, 64, 0);
			const fired: string[] = [];
			const a = entry("a");
			wheel.schedule(a, 10, 3); // due at 13
			wheel.advance(10, (e) => fired.push(e.name));
			assert.equal(fired.length, 0, "fired at 10, 3 ms before it was due");
			wheel.advance(20, (e) => fired.push(e.name));
			assert.deepEqual(fired, ["a"]);
		},
	);

	it("a budget stops advancing early and the rest fires on the next call", () => {
		const wheel = new TimerWheel<E>(10, 64, 0);
		const all = Array.from({ length: 10 }, (_, i) => entry(`e${i}`));
		all.forEach((e, i) => wheel.schedule(e, 10 * (i + 1), 0));
		const fired: string[] = [];
		assert.equal(wheel.advance(200, (e) => fired.push(e.name), 3), false);
		assert.deepEqual(fired, ["e0", "e1", "e2"]);
		assert.equal(wheel.advance(200, (e) => fired.push(e.name)), true);
		assert.equal(fired.length, 10);
	});
});

describe("LagHistogram", () => {
	it("gives p50/p99 in ms buckets and starts over on take()", () => {
		const lag = new LagHistogram();
		assert.deepEqual(lag.snapshot(), { p50: 0, p99: 0, count: 0 });
		for (let i = 1; i <= 100; i++) lag.record(i);
		assert.deepEqual(lag.snapshot(), { p50: 50, p99: 99, count: 100 });
		lag.record(-5);
		lag.record(10_000);
		assert.equal(lag.snapshot().count, 102);
		assert.deepEqual(lag.take(), { p50: 50, p99: 100, count: 102 }, "rank 101 of 102 is the value 100");
		assert.deepEqual(lag.snapshot(), { p50: 0, p99: 0, count: 0 });
		for (let i = 0; i < 100; i++) lag.record(5000);
		assert.equal(lag.snapshot().p99, 1000, "overflow bucket");
	});
});

describe("PerformLog", () => {
	it("writes lines that parsePerformLog reads back", () => {
		const file = tmp.file("pl.log");
		const log = new PerformLog(file, "n7");
		const t0 = log.now();
		log.record("k1", t0, t0 + 1.5, 3);
		log.record("k2", t0 + 2, t0 + 3, 1);
		log.close();
		const records = parsePerformLog(fs.readFileSync(file, "utf8"));
		assert.equal(records.length, 2);
		assert.deepEqual(records.map((r) => [r.key, r.node, r.messages]), [["k1", "n7", 3], ["k2", "n7", 1]]);
		assert.ok(Math.abs(records[0].end - records[0].start - 1.5) < 0.002);
	});

	it("findOverlaps finds exactly the keys performed on two nodes at once", () => {
		const brute = (records: PerformRecord[]) => {
			const keys = new Set<string>();
			for (const a of records) for (const b of records) if (a !== b && a.key === b.key && a.node !== b.node && a.start < b.end && b.start < a.end) keys.add(a.key);
			return keys;
		};
		let seed = 7;
		const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
		for (let round = 0; round < 300; round++) {
			const records: PerformRecord[] = [];
			for (let i = 0; i < 12; i++) {
				const start = Math.floor(rand() * 100);
				records.push({ key: `k${Math.floor(rand() * 3)}`, node: `n${Math.floor(rand() * 3)}`, start, end: start + 1 + Math.floor(rand() * 20), messages: 1 });
			}
			const expected = brute(records);
			const found = findOverlaps(records.map((r) => ({ ...r })));
			assert.deepEqual(new Set(found.map(([a]) => a.key)), expected, `round ${round}`);
			for (const [a, b] of found) assert.ok(a.key === b.key && a.node !== b.node && a.start < b.end && b.start < a.end);
		}
		assert.deepEqual(findOverlaps([{ key: "k", node: "a", start: 0, end: 10, messages: 1 }, { key: "k", node: "b", start: 10, end: 20, messages: 1 }]), [], "touching is not overlapping");
	});
});

describe("ActorRuntime: activation after a settle", () => {
	it("walks the specs again only when this node can own new keys (not on a join, yes after a leave)", async () => {
		let walks = 0;
		const ids = Array.from({ length: 200 }, (_, i) => `spec_${i}`);
		const rec = recorder((call) => ({ ok: call.payload }));
		rec.behaviour.childrenSpecs = () => {
			walks++;
			return ids.map((id) => ({ id, payload: 0 }));
		};
		const { rt } = await runtime(rec.behaviour);
		assert.equal(walks, 1);
		const mine = (members: string[]) => ids.filter((id) => viewOf(members).ring.ownerOf(id) === "n1").length;
		const settle = async (members: string[]) => {
			const view = viewOf(members);
			rt.onView(view);
			await rt.handoff(view);
			rt.onSettled(view);
			await rt.whenReady();
		};
		await settle(["n1", "n2"]);
		assert.equal(walks, 1, "a join gives n1 no new key: no walk");
		assert.equal(rt.stats().actors, mine(["n1", "n2"]));
		await settle(["n1"]);
		assert.equal(walks, 2, "n2 left: n1 takes its keys");
		assert.equal(rt.stats().actors, 200);
	});
});
