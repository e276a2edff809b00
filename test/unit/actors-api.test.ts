/**
 * put, get, del and ctx.publish.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { drained, recorder, runtime, send, viewOf } from "../support/actors";
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
