/**
 * put, get, del and ctx.publish.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { RESULT_ID_HEADER } from "../../lib/actors/result-id";
import type { ActorBehaviour } from "../../lib/actors/types";
import { drained, recorder, runtime, send, viewOf, stateOf } from "../support/actors";
import { deferred, isSettled, waitFor } from "../support/wait";

describe("ActorRuntime: put, get, del, publish", () => {
	it("put creates or replaces, get reads, del removes and dead-letters pending messages", async () => {
		const gate = deferred();
		const rec = recorder(async (call) => {
			if (call.messages.some((m) => m.id === "m1")) await gate.promise;
			return { ok: true };
		});
		const { rt, store } = await runtime(rec.behaviour, { defaultInterval: 0 });
		const created = await rt.put("a", { v: 1 });
		assert.deepEqual([created.id, created.payload, created.timeout, created.node, created.busy, created.pending], ["a", { v: 1 }, 0, "n1", false, 0]);
		assert.deepEqual(stateOf(store, "a"), { id: "a", payload: { v: 1 }, timeout: 0, deleted: false });
		const replaced = await rt.put("a", { v: 2 }, 1000);
		assert.deepEqual([replaced.payload, replaced.timeout], [{ v: 2 }, 1000]);
		assert.deepEqual(rt.get("a")!.payload, { v: 2 });
		assert.deepEqual(stateOf(store, "a"), { id: "a", payload: { v: 2 }, timeout: 1000, deleted: false });
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
		assert.deepEqual(
			store.dead(10).map((d) => [d.id, d.reason]),
			[
				["m2", "actor deleted"],
				["m3", "actor deleted"],
			],
		);
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
		// The headers given to publish are kept; each result carries the id of the message it was published for.
		for (const o of outbox) assert.deepEqual(o.headers, { key: o.headers!.key, [RESULT_ID_HEADER]: (JSON.parse(o.body) as { echo: string }).echo });
	});

	it("the README's cart actor publishes results whose ids are the performed messages' ids, distinct per perform", async () => {
		// The perform of README's "Write your own actors", as written there.
		const behaviour: ActorBehaviour = {
			childrenSpecs: () => [{ id: "cart:1", payload: { items: [] } }],
			perform(id, payload, messages, ctx) {
				const cart = payload as { items: string[] };
				if (messages.length === 0) return { ok: cart };
				const items = [...cart.items, ...messages.map((m) => String(m.payload))];
				ctx.publish({ id, size: items.length });
				return { replace: { items } };
			},
		};
		const { store } = await runtime(behaviour);
		send(store, "cart:1", "m1", "apple");
		await waitFor(drained(store), { message: "m1 performed" });
		send(store, "cart:1", "m2", "pear");
		await waitFor(drained(store), { message: "m2 performed" });
		const outbox = store.outbox(10);
		assert.deepEqual(
			outbox.map((o) => [o.headers?.[RESULT_ID_HEADER], o.body]),
			[
				["m1", JSON.stringify({ id: "cart:1", size: 1 })],
				["m2", JSON.stringify({ id: "cart:1", size: 2 })],
			],
		);
	});

	it("results of a periodic perform are named by the actor and the perform's time, further results of one perform get #1, #2", async () => {
		const rec = recorder((call, ctx) => {
			if (call.messages.length === 0 && rec.of("tick").length === 1) {
				ctx.publish("a");
				ctx.publish("b");
				ctx.publish("c");
			}
			return { ok: true };
		});
		const before = Date.now();
		const { rt, store } = await runtime(rec.behaviour);
		await rt.put("tick", null, 20);
		await waitFor(() => store.outbox(10).length === 3, { message: "the first periodic perform's results" });
		const ids = store.outbox(10).map((o) => String(o.headers?.[RESULT_ID_HEADER]));
		const match = /^tick@(\d+)$/.exec(ids[0]);
		assert.ok(match, ids[0]);
		assert.ok(Number(match[1]) >= before && Number(match[1]) <= Date.now(), "the perform's time");
		assert.deepEqual(ids.slice(1), [`${ids[0]}#1`, `${ids[0]}#2`]);
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
		assert.deepEqual(
			store.outbox(10).map((o) => o.body),
			['"attempt 2"'],
		);
	});
});
