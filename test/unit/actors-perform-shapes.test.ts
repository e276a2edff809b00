/**
 * The return shapes of perform, through a runtime on a real store.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { drained, recorder, runtime, send, stateOf } from "../support/actors";
import { sleep, turns, waitFor } from "../support/wait";

describe("ActorRuntime: perform return shapes", () => {
	it("{ ok } commits the messages, keeps the payload, and resolves the caller", async () => {
		const rec = recorder((call) => ({ ok: { seen: call.messages.map((m) => m.payload) } }));
		rec.behaviour.spawn = () => ({ payload: { n: 1 } });
		const { rt, store } = await runtime(rec.behaviour, { payloadFormat: "json" });
		const result = rt.awaitResult("m1");
		store.append([{ id: "m1", key: "k", payload: '{"a":1}', headers: { h: "v" } }]);
		assert.deepEqual(await result, { seen: [{ a: 1 }] }, "json payloads are parsed for perform");
		await waitFor(drained(store), { message: "m1 committed" });
		const [call] = rec.calls;
		assert.deepEqual(call.payload, { n: 1 });
		assert.deepEqual(
			call.messages.map((m) => [m.id, m.key, m.payload, m.headers, m.attempts]),
			[["m1", "k", { a: 1 }, { h: "v" }, 0]],
		);
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
		assert.deepEqual(stateOf(store, "k"), { id: "k", payload: 2, timeout: 0, deleted: false });
		assert.deepEqual(
			rec.calls.map((c) => c.payload),
			[null, 1],
		);
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
		assert.deepEqual(stateOf(store, "new"), { id: "new", payload: { moved: true }, timeout: 0, deleted: false });
		assert.deepEqual(rec.terminated, [["old", "replaced"]]);
		assert.deepEqual(inits, [
			["old", "spawned old"],
			["new", { moved: true }],
		]);
		const next = rt.awaitResult("m2");
		send(store, "new", "m2");
		assert.deepEqual(await next, { moved: true }, "the new actor performs with the replaced payload");
	});

	it("{ replace, id } onto an actor that already runs here leaves memory and store agreeing", async () => {
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
	});

	it('"halt" removes the actor; a new message activates it again on demand', async () => {
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
