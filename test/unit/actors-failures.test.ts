/**
 * Failed, timed-out and uncommittable performs: retries, dead letters, the per-perform commit fallback.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { PerformResult } from "../../lib/actors/types";
import { drained, newStore, recorder, runtime, send, viewOf } from "../support/actors";
import { onFile } from "../support/tmp";
import { deferred, isSettled, sleep, waitFor } from "../support/wait";

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
		assert.deepEqual(
			attempts.map((c) => c.attempt),
			[1, 2, 3],
		);
		assert.deepEqual(
			attempts.map((c) => c.messages[0].attempts),
			[0, 1, 2],
		);
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

	it("a message that arrives while a poisoned batch backs off is not dead-lettered with it", async () => {
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
		assert.deepEqual(
			dead.map((d) => d.id),
			["bad"],
			`dead: ${dead.map((d) => `${d.id} after ${d.attempts} attempts`).join(", ")}`,
		);
		assert.ok(
			rec.calls.some((c) => c.messages.length === 1 && c.messages[0].id === "innocent"),
			"innocent performed on its own",
		);
	});

	it("a perform past the perform timeout calls handleTimeout, and its messages are retried once it settles", async () => {
		const timeouts: [string, unknown][] = [];
		let first = true;
		const rec = recorder(() => {
			if (first) {
				first = false;
				return new Promise<PerformResult>((resolve) => setTimeout(() => resolve({ ok: "too late" }), 400));
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

describe("ActorRuntime: performs past the perform timeout", () => {
	it("a timed-out perform keeps its key: no second perform until it settles, and its late result is discarded", async () => {
		let running = 0;
		let overlapped = false;
		let settledAt = 0;
		const rec = recorder(async (call) => {
			if (++running > 1) overlapped = true;
			try {
				if (call.attempt === 1) {
					await sleep(400);
					settledAt = Date.now();
					return { replace: "late" };
				}
				return { ok: "retried" };
			} finally {
				running--;
			}
		});
		rec.behaviour.spawn = () => ({ payload: "p" });
		const { rt, store } = await runtime(rec.behaviour, { performTimeoutMs: 100, retryBaseMs: 10 });
		const result = rt.awaitResult("m1");
		send(store, "k", "m1");
		await waitFor(() => rt.stats().timeouts === 1, { message: "timed out" });
		assert.equal(rt.get("k")?.busy, true, "still busy while its promise runs");
		assert.equal(await result, "retried");
		assert.equal(overlapped, false, "never two performs of k at once");
		assert.equal(rec.calls.length, 2);
		assert.ok(rec.calls[1].at >= settledAt, "the retry starts after the timed-out perform settled");
		assert.equal(rt.get("k")?.payload, "p", "the late { replace } is discarded");
		await waitFor(drained(store), { message: "committed" });
		assert.equal(store.actor("k"), undefined, "nothing of the late result committed");
	});

	it("a key whose perform timed out is not released or shipped before the perform settles; the handoff waits and names the key once", async () => {
		const gate = deferred();
		const rec = recorder(async (call) => {
			if (call.attempt === 1) {
				await gate.promise;
				return { replace: "late" };
			}
			return { ok: true };
		});
		const { rt, store, logger } = await runtime(rec.behaviour, { performTimeoutMs: 100 });
		const two = viewOf(["n1", "n2"]);
		const key = Array.from({ length: 100 }, (_, i) => `key_${i}`).find((k) => two.ring.ownerOf(k) === "n2")!;
		send(store, key, "m1");
		await waitFor(() => rt.stats().timeouts === 1, { message: "timed out" });
		rt.onView(two);
		const handoff = rt.handoff(two);
		await sleep(250);
		assert.equal(rt.holds(key), true, "held while the timed-out perform runs");
		assert.equal(await isSettled(handoff), false, "the handoff waits for it");
		const lines = logger.lines.warn.filter((l) => l.includes(key));
		assert.equal(lines.length, 1, JSON.stringify(logger.lines.warn));
		assert.match(lines[0], /handoff waits for the perform of .* past the perform timeout/);
		gate.resolve();
		await handoff;
		assert.equal(rt.holds(key), false);
		assert.equal(rec.calls.length, 1, "not performed again here");
		assert.deepEqual(
			store.messagesOf(key).map((r) => [r.id, r.attempts]),
			[["m1", 1]],
			"the row ships with the failed attempt counted",
		);
		assert.equal(store.actor(key), undefined, "the late result is discarded");
	});
});

describe("ActorRuntime: commit failures (fault injected with a SQLite trigger)", () => {
	it("a perform whose commit fails does not hold back other keys", async () => {
		const rec = recorder((call, ctx) => {
			if (call.id === "poison") ctx.publish("boom");
			return { ok: true };
		});
		const store = newStore();
		onFile(store.file, `CREATE TRIGGER fail_boom BEFORE INSERT ON outbox WHEN NEW.body = '"boom"' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;`);
		await runtime(rec.behaviour, { store, maxAttempts: 3 });
		store.append([{ id: "p1", key: "poison", payload: "x" }, ...Array.from({ length: 5 }, (_, i) => ({ id: `ok${i}`, key: `k${i}`, payload: "x" }))]);
		const others = Array.from({ length: 5 }, (_, i) => `k${i}`);
		await waitFor(() => others.every((k) => store.messagesOf(k).length === 0), {
			message: "every other key committed",
			timeoutMs: 1000,
			detail: () => `${store.scan(0, 100).length} rows left, pendingCount says ${store.pendingCount}`,
		});
	});

	it("a message whose results can never be committed is dead-lettered after maxAttempts, not retried forever", async () => {
		const rec = recorder((_call, ctx) => {
			ctx.publish(undefined);
			return { ok: true };
		});
		const { store } = await runtime(rec.behaviour, { maxAttempts: 3, retryBaseMs: 5 });
		send(store, "k", "m1");
		await waitFor(drained(store), { message: "m1 handled (dead-lettered or committed)", timeoutMs: 1000, detail: () => `${rec.calls.length} performs so far` });
	});

	it("a failed commit leaves the actor's payload as committed", async () => {
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
		assert.ok(
			rec.calls.every((c) => c.payload === 0),
			`performs saw payloads ${rec.calls.map((c) => c.payload).join(", ")}`,
		);
	});

	it("messages waiting behind a perform that halts are performed, in order, by the actor activated again", async () => {
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
			detail: () =>
				`pending ${store
					.messagesOf("k")
					.map((r) => r.id)
					.join(",")}`,
		});
		send(store, "k", "m4");
		await waitFor(drained(store), { message: "m4 performed" });
		assert.deepEqual(rec.ids(), ["m1", "m2", "m3", "m4"]);
	});
});
