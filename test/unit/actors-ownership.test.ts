/**
 * Ownership: views, handoff, activation after a settle, hooks, and a restart on the same file.
 */
import assert from "node:assert/strict";
import * as fs from "fs";
import { describe, it } from "node:test";
import { findOverlaps, parsePerformLog } from "../../lib/actors/perform-log";
import type { ActorBehaviour } from "../../lib/actors/types";
import { Store } from "../../lib/store/store";
import { drained, newStore, recorder, runtime, send, tmp, viewOf, stateOf } from "../support/actors";
import { deferred, isSettled, sleep, turns, waitFor } from "../support/wait";

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
		assert.equal(
			store
				.messagesOf(busy)
				.map((r) => r.id)
				.join(),
			"also-for-n2",
			"the slow row is committed, the new one waits to ship",
		);
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

	it("a put that waited for a busy actor whose key moved meanwhile is refused and leaves nothing held, so the handoff resolves", async () => {
		const gate = deferred();
		const rec = recorder(async () => {
			await gate.promise;
			return { ok: true };
		});
		const { rt, store } = await runtime(rec.behaviour);
		const key = SPEC_KEYS.find((k) => TWO.ring.ownerOf(k) === "n2")!;
		send(store, key, "slow");
		await waitFor(() => rt.get(key)?.busy === true, { message: "busy" });
		const putting = rt.put(key, "new payload");
		await turns(3); // put checked ownership and waits for the busy actor
		rt.onView(TWO);
		rt.onStateChange("ready", "rehashing");
		const handoff = rt.handoff(TWO);
		gate.resolve();
		await assert.rejects(putting, (err: Error) => err.name === "NotOwnerError" && /does not own/.test(err.message));
		const resolved = await Promise.race([handoff.then(() => true), sleep(1000).then(() => false)]);
		assert.equal(resolved, true, "the handoff resolves");
		assert.equal(rt.holds(key), false, "no actor spawned for a key this node gave away");
		assert.equal(store.actor(key), undefined, "nothing committed for the moved key");
	});

	it("a del that waited for a busy actor whose key moved meanwhile is refused and writes no tombstone to ship", async () => {
		const gate = deferred();
		const rec = recorder(async (call) => {
			if (call.messages.some((m) => m.id === "slow")) await gate.promise;
			return { replace: "state" };
		});
		const { rt, store } = await runtime(rec.behaviour);
		const key = SPEC_KEYS.find((k) => TWO.ring.ownerOf(k) === "n2")!;
		send(store, key, "slow");
		await waitFor(() => rt.get(key)?.busy === true, { message: "busy" });
		const deleting = rt.del(key);
		await turns(3); // del checked ownership and waits for the busy actor
		rt.onView(TWO);
		send(store, key, "for-n2");
		gate.resolve();
		await assert.rejects(deleting, (err: Error) => err.name === "NotOwnerError");
		await rt.handoff(TWO);
		assert.deepEqual(stateOf(store, key), { id: key, payload: "state", timeout: 0, deleted: false }, "the record the new owner gets is not a tombstone");
		assert.deepEqual(
			store.messagesOf(key).map((r) => r.id),
			["for-n2"],
			"the row waiting to ship is not dead-lettered",
		);
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
		assert.equal(
			records.reduce((sum, r) => sum + r.messages, 0),
			100 - done,
			"one log line per perform of the second runtime",
		);
		assert.ok(records.every((r) => r.node === "n1" && r.end >= r.start));
		assert.deepEqual(findOverlaps(records), []);
	});
});

describe("ActorRuntime: activation after a settle", () => {
	it("after a settle, a key with stored state performs the rows that waited before the walk of the specs ends, and a key without waits for its spec, its waiting rows before any new one", async () => {
		const keys = Array.from({ length: 200 }, (_, i) => `key_${i + 1}`);
		const two = viewOf(["n1", "n2"]);
		const gate = deferred();
		let walks = 0;
		const rec = recorder((call) => ({ replace: (call.payload as number) + call.messages.length }));
		rec.behaviour.childrenSpecs = async () => {
			if (++walks > 1) await gate.promise;
			return keys.map((id) => ({ id, payload: 1000, timeout: 0 }));
		};
		rec.behaviour.spawn = () => ({ payload: -1 });
		const { rt, store } = await runtime(rec.behaviour, { members: ["n1", "n2"] });
		const [held, fresh] = keys.filter((k) => two.ring.ownerOf(k) === "n2");
		// What a takeover or a handoff leaves before the settle: a stored actor and rows for keys n1 does not own yet.
		store.commit({ actors: [{ id: held, payload: 5, timeout: 0, deleted: false }] });
		for (const id of ["h1", "h2"]) send(store, held, id, "x");
		send(store, fresh, "f1", "x");

		const ONE = viewOf(["n1"]);
		rt.onView(ONE);
		await rt.handoff(ONE);
		rt.onSettled(ONE);
		await waitFor(() => rt.get(held)?.payload === 7, { message: `${held} performs its two rows while the walk waits` });
		assert.equal(walks, 2, "the second walk is waiting for its specs");
		send(store, fresh, "f2", "x");
		await sleep(50);
		assert.deepEqual(rec.of(fresh), [], `${fresh} has no stored state: nothing of it performs before its spec`);

		gate.resolve();
		await waitFor(() => rec.of(fresh).flatMap((c) => c.messages.map((m) => m.id)).length === 2, { message: `${fresh} performs f1 and f2` });
		assert.deepEqual(
			rec.of(fresh).flatMap((c) => c.messages.map((m) => m.id)),
			["f1", "f2"],
			"the row that waited first",
		);
		assert.equal(rt.get(fresh)!.payload, 1002, "spawned from its spec, not from spawn()");
	});

	it("an actor deleted while the walk of the specs is under way stays deleted: its waiting rows are dead letters, never performed, and the walk does not start it", async () => {
		const keys = Array.from({ length: 200 }, (_, i) => `key_${i + 1}`);
		const two = viewOf(["n1", "n2"]);
		const gate = deferred();
		let walks = 0;
		const rec = recorder();
		rec.behaviour.childrenSpecs = async () => {
			if (++walks > 1) await gate.promise;
			return keys.map((id) => ({ id, payload: 0, timeout: 0 }));
		};
		const { rt, store } = await runtime(rec.behaviour, { members: ["n1", "n2"] });
		const [key] = keys.filter((k) => two.ring.ownerOf(k) === "n2");
		for (const id of ["d1", "d2"]) send(store, key, id, "x");
		const one = viewOf(["n1"]);
		rt.onView(one);
		await rt.handoff(one);
		rt.onSettled(one);
		assert.equal(walks, 2, "the walk waits for its specs");
		assert.equal(await rt.del(key), false, "no actor was running");
		gate.resolve();
		await sleep(100);
		assert.equal(rt.get(key), null, "the walk did not start the deleted actor");
		assert.deepEqual(rec.of(key), [], "its rows were not performed");
		assert.deepEqual(
			store
				.dead(10)
				.map((d) => d.id)
				.sort(),
			["d1", "d2"],
		);
	});

	it("a put waiting for a view that an older walk's end wakes keeps waiting until its own view is settled", async () => {
		const gate = deferred();
		let walks = 0;
		const rec = recorder();
		rec.behaviour.childrenSpecs = async () => {
			if (++walks === 2) await gate.promise;
			return [];
		};
		const { rt } = await runtime(rec.behaviour, { members: ["n1", "n2"] });
		const one = viewOf(["n1"]);
		rt.onView(one);
		await rt.handoff(one);
		rt.onSettled(one);
		const next = viewOf(["n1", "n3"]);
		const key = Array.from({ length: 50 }, (_, i) => `key_${i + 1}`).find((k) => next.ring.ownerOf(k) === "n1")!;
		rt.onView(next);
		const put = rt.put(key, 1);
		gate.resolve();
		assert.equal(await isSettled(put), false, "the walk of the older view ended; the newer view is not settled");
		rt.onSettled(next);
		await put;
	});

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
