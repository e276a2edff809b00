/**
 * The parts of the runtime that need no store: what a perform's result means,
 * result ids, retries, mailboxes and waiters.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Mailboxes } from "../../lib/actors/mailboxes";
import { interpretResult, isEmptyCommit } from "../../lib/actors/perform-result";
import { RESULT_ID_HEADER, resultIdOf, withResultIds } from "../../lib/actors/result-id";
import { RetryPolicy } from "../../lib/actors/retry-policy";
import { KeyedWaiters, ResultWaiters, WaiterList } from "../../lib/actors/waiters";
import type { StoredMessage } from "../../lib/store/store";
import { isSettled } from "../support/wait";

const actor = { id: "a", payload: { n: 1 }, interval: 500 };

function row(seq: number, stamp = seq, attempts = 0): StoredMessage {
	return { seq, id: `m${seq}`, key: "a", stamp, payload: "", headers: null, receivedAt: 0, attempts };
}

describe("interpretResult", () => {
	it("{ ok } and undefined commit the rows and keep the actor as it is", () => {
		const ok = interpretResult(actor, { ok: 7 }, [row(1), row(2)], null);
		assert.deepEqual(ok, {
			commit: {
				done: [
					{ id: "m1", key: "a" },
					{ id: "m2", key: "a" },
				],
			},
			result: 7,
			removed: null,
			update: null,
		});
		const nothing = interpretResult(actor, undefined, [], null);
		assert.deepEqual(nothing, { commit: {}, result: undefined, removed: null, update: null });
		assert.equal(isEmptyCommit(nothing.commit), true);
	});

	it("{ replace } saves the new payload with the actor's interval", () => {
		const out = interpretResult(actor, { replace: { n: 2 } }, [], null);
		assert.deepEqual(out.commit.actors, [{ id: "a", payload: { n: 2 }, timeout: 500, deleted: false }]);
		assert.deepEqual(out.update, { payload: { n: 2 }, interval: 500 });
		assert.deepEqual(out.result, { n: 2 });
		assert.equal(out.removed, null);
	});

	it("{ replace, id } tombstones the old actor and writes the new one", () => {
		const out = interpretResult(actor, { replace: "x", id: "b" }, [row(1)], null);
		assert.equal(out.removed, "replaced");
		assert.equal(out.update, null);
		assert.deepEqual(out.commit.actors, [
			{ id: "a", payload: { n: 1 }, timeout: 500, deleted: true },
			{ id: "b", payload: "x", timeout: 500, deleted: false },
		]);
		assert.equal(out.commit.done?.length, 1);
	});

	it("{ replace, id } with the actor's own id is a plain replace", () => {
		const out = interpretResult(actor, { replace: "x", id: "a" }, [], null);
		assert.equal(out.removed, null);
		assert.deepEqual(out.update, { payload: "x", interval: 500 });
	});

	it('"halt" tombstones the actor and resolves callers with undefined', () => {
		const out = interpretResult(actor, "halt", [row(1)], null);
		assert.equal(out.removed, "halt");
		assert.equal(out.result, undefined);
		assert.deepEqual(out.commit.actors, [{ id: "a", payload: { n: 1 }, timeout: 500, deleted: true }]);
	});

	it("{ timeout, result } sets the periodic interval, never below 0", () => {
		const out = interpretResult(actor, { timeout: 20, result: "r" }, [], null);
		assert.deepEqual(out.update, { payload: { n: 1 }, interval: 20 });
		assert.equal(out.result, "r");
		assert.deepEqual(out.commit.actors, [{ id: "a", payload: { n: 1 }, timeout: 20, deleted: false }]);
		assert.deepEqual(interpretResult(actor, { timeout: -5 }, [], null).update, { payload: { n: 1 }, interval: 0 });
	});

	it("what the perform published goes into the same commit", () => {
		const outbox = [{ key: "a", body: "1", headers: null }];
		const out = interpretResult(actor, undefined, [], outbox);
		assert.deepEqual(out.commit, { outbox });
		assert.equal(isEmptyCommit(out.commit), false);
	});
});

describe("result ids", () => {
	const rows = [{ id: "m1" }, { id: "m2" }];

	it("the i-th result of a perform is named after its i-th message, results beyond the messages after the last with #n", () => {
		assert.deepEqual(
			[0, 1, 2, 3].map((i) => resultIdOf(rows, i, "a", 5)),
			["m1", "m2", "m2#1", "m2#2"],
		);
		assert.deepEqual(
			[0, 1].map((i) => resultIdOf([{ id: "m1" }], i, "a", 5)),
			["m1", "m1#1"],
		);
	});

	it("a periodic perform's results are named after the actor and the perform's time", () => {
		assert.deepEqual(
			[0, 1, 2].map((i) => resultIdOf([], i, "a", 1700000000123)),
			["a@1700000000123", "a@1700000000123#1", "a@1700000000123#2"],
		);
	});

	it("withResultIds adds the id to each entry's headers and keeps the others", () => {
		const stamped = withResultIds(
			[
				{ key: "a", body: "1", headers: { key: "k" } },
				{ key: "a", body: "2", headers: null },
			],
			rows,
			"a",
			5,
		);
		assert.deepEqual(stamped, [
			{ key: "a", body: "1", headers: { key: "k", [RESULT_ID_HEADER]: "m1" } },
			{ key: "a", body: "2", headers: { [RESULT_ID_HEADER]: "m2" } },
		]);
	});
});

describe("RetryPolicy", () => {
	it("retries rows with attempts left, dead-letters the rest with the error's message", () => {
		const policy = new RetryPolicy(3, 100, 1000);
		const commit = policy.failureCommit([row(1, 1, 0), row(2, 2, 2), row(3, 3, 1)], new Error("boom"));
		assert.deepEqual(commit, { dead: [{ id: "m2", reason: "boom" }], failed: ["m1", "m3"] });
		assert.deepEqual(policy.failureCommit([row(4, 4, 2)], new TypeError("")), { dead: [{ id: "m4", reason: "TypeError" }] });
	});

	it("backs off exponentially up to the maximum", () => {
		const policy = new RetryPolicy(10, 100, 1000);
		assert.deepEqual(
			[0, 1, 2, 3, 4, 5].map((a) => policy.backoffMs(a)),
			[100, 100, 200, 400, 800, 1000],
		);
	});
});

describe("Mailboxes", () => {
	it("keeps rows in stamp order, takes a batch from the front, and knows which rows are dealt", () => {
		const boxes = new Mailboxes<string>();
		boxes.add("a", row(1, 10));
		boxes.add("a", row(2, 30));
		boxes.add("a", row(3, 20));
		assert.deepEqual(
			boxes.take("a", 2).map((r) => r.seq),
			[1, 3],
		);
		assert.equal(boxes.isDealt(1), true, "rows in a perform stay dealt");
		const rest = boxes.take("a", 2);
		assert.deepEqual(
			rest.map((r) => r.seq),
			[2],
		);
		assert.equal(boxes.has("a"), false);
		boxes.done(rest);
		assert.equal(boxes.isDealt(2), false);
	});

	it("puts a failed batch back in front; drop forgets the mailbox and its rows", () => {
		const boxes = new Mailboxes<string>();
		boxes.add("a", row(1));
		boxes.add("a", row(2));
		const batch = boxes.take("a", 1);
		boxes.add("a", row(3));
		boxes.putBack("a", batch);
		assert.deepEqual(
			boxes.take("a", 10).map((r) => r.seq),
			[1, 2, 3],
		);
		boxes.add("b", row(4));
		boxes.drop("b");
		boxes.drop("b");
		assert.equal(boxes.has("b"), false);
		assert.equal(boxes.isDealt(4), false);
	});
});

describe("waiters", () => {
	it("a result waiter is resolved or rejected once, and a forgotten one never", async () => {
		const waiters = new ResultWaiters();
		const one = waiters.wait("m1");
		const two = waiters.wait("m2");
		const three = waiters.wait("m3");
		waiters.resolve("m1", 1);
		waiters.resolve("m1", 2);
		waiters.reject("m2", new Error("dead"));
		waiters.forget("m3");
		waiters.resolve("m3", 3);
		assert.equal(await one, 1);
		await assert.rejects(two, /dead/);
		assert.equal(await isSettled(three), false);
	});

	it("keyed waiters wake only their key; a waiter list wakes everyone", async () => {
		const keyed = new KeyedWaiters<object>();
		const a = {};
		const b = {};
		const onA = [keyed.wait(a), keyed.wait(a)];
		const onB = keyed.wait(b);
		keyed.wake(a);
		await Promise.all(onA);
		assert.equal(await isSettled(onB), false);
		const list = new WaiterList();
		assert.equal(list.waiting, false);
		const all = [list.wait(), list.wait()];
		assert.equal(list.waiting, true);
		list.wakeAll();
		await Promise.all(all);
		assert.equal(list.waiting, false);
	});
});
