/**
 * How the runtime deals rows to actors and schedules their performs.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { drained, newStore, recorder, runtime, send } from "../support/actors";
import { deferred, sleep, waitFor } from "../support/wait";

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
		assert.ok(
			rec.calls.every((c) => c.messages.length <= 4),
			"maxBatch honoured",
		);
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
		store.append([{ id: "newer", key: "k", payload: "newer", stamp: first.stamp + 2 }]);
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
		store.append([
			{ id: "early-1", key: "k", payload: "a" },
			{ id: "early-2", key: "k", payload: "b" },
		]);
		const rec = recorder();
		await runtime(rec.behaviour, { store });
		await waitFor(drained(store), { message: "early rows performed" });
		assert.deepEqual(rec.ids(), ["early-1", "early-2"]);
	});
});
