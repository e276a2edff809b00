import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Ring } from "../../lib/ring";
import { Topology, type TopologyParticipant, type TopologyState, type View } from "../../lib/topology/topology";
import { deferred, isSettled, sleep, turns, waitFor, type Deferred } from "../support/wait";

interface Change {
	from: TopologyState;
	to: TopologyState;
	members: readonly string[];
	viewId: string;
}

/** A Topology whose announcements, views, settles and state changes are recorded. */
function harness(self = "a", consensus = 1) {
	const announced: string[] = [];
	const changes: Change[] = [];
	const views: View[] = [];
	const settled: View[] = [];
	const topology = new Topology({ self, consensus, ringPoints: 160, announce: (id) => announced.push(id) });
	topology.addParticipant({
		onView: (v) => views.push(v),
		onSettled: (v) => settled.push(v),
		onStateChange: (from, to, view) => changes.push({ from, to, members: view.members, viewId: view.id }),
	});
	return { topology, announced, changes, views, settled };
}

function idOf(members: string[]): string {
	return Ring.of(members).id;
}

/** A participant whose handoff waits on a gate the test opens; records what happens. */
function gatedParticipant(name: string, log: string[]): TopologyParticipant & { gates: Map<string, Deferred> } {
	const gates = new Map<string, Deferred>();
	return {
		gates,
		async handoff(view: View) {
			log.push(`${name} start ${view.members.join(",")}`);
			const gate = deferred();
			gates.set(view.id, gate);
			await gate.promise;
			log.push(`${name} end ${view.members.join(",")}`);
		},
	};
}

describe("Topology states", () => {
	it("stays down until start(), whatever updates come", async () => {
		const h = harness("a");
		h.topology.update(["a", "b"], ["a", "b"]);
		await turns();
		assert.equal(h.topology.state, "down");
		assert.equal(h.topology.active, false);
		assert.deepEqual(h.changes, []);
		assert.deepEqual(h.announced, []);
		assert.equal(h.topology.ownerOf("key_1"), null);
	});

	it("a lone node with consensus 1 goes down → rehashing → ready, announcing its view", async () => {
		const h = harness("a");
		h.topology.update(["a"], ["a"]);
		h.topology.start();
		assert.equal(h.topology.state, "rehashing");
		assert.equal(h.topology.active, true);
		await waitFor(() => h.topology.state === "ready", { message: "ready" });
		const id = idOf(["a"]);
		assert.deepEqual(h.announced, [id]);
		assert.deepEqual(
			h.changes.map((c) => [c.from, c.to, c.members.join(","), c.viewId]),
			[
				["down", "rehashing", "a", id],
				["rehashing", "ready", "a", id],
			],
		);
		assert.equal(h.settled.length, 1);
		assert.equal(h.settled[0], h.topology.view);
		assert.equal(h.topology.settledView, h.topology.view);
		assert.equal(h.topology.isMember, true);
		assert.equal(h.topology.ownerOf("anything"), "a");
		assert.equal(h.topology.doneFor(), id);
		assert.ok(h.topology.lastRehashMs >= 0);
	});

	it("stays assembling below consensus and emits nothing settled", async () => {
		const h = harness("a", 2);
		h.topology.update(["a"], ["a", "b"]);
		h.topology.start();
		await turns(10);
		assert.equal(h.topology.state, "assembling");
		assert.equal(h.topology.active, false);
		assert.deepEqual(
			h.changes.map((c) => [c.from, c.to, c.members.length]),
			[["down", "assembling", 0]],
		);
		assert.deepEqual(h.settled, []);
		assert.deepEqual(h.announced, []);
		assert.equal(h.topology.settledView, null);
		assert.equal(h.topology.ownerOf("key_1"), null, "a minority owns nothing");
		h.topology.update(["a"], ["a"]);
		await turns(10);
		assert.equal(h.topology.state, "assembling");
		assert.deepEqual(h.settled, []);
	});

	it("leaves assembling for rehashing when consensus is reached, and is ready once every participant is done", async () => {
		const h = harness("a", 2);
		h.topology.start();
		h.topology.update(["a"], ["a"]);
		assert.equal(h.topology.state, "assembling");
		h.topology.update(["b", "a"], ["a", "b"]);
		assert.equal(h.topology.state, "rehashing");
		const id = idOf(["a", "b"]);
		assert.equal(h.topology.view.id, id);
		assert.deepEqual(h.topology.view.members, ["a", "b"]);
		await waitFor(() => h.announced.length === 1, { message: "own announcement" });
		assert.deepEqual(h.announced, [id]);
		assert.equal(h.topology.state, "rehashing", "b has not announced yet");
		assert.deepEqual(h.topology.waitingFor(), ["b"]);
		h.topology.handoffDone("b", "some-other-view");
		assert.equal(h.topology.state, "rehashing", "done for another view does not count");
		h.topology.handoffDone("b", id);
		assert.equal(h.topology.state, "ready");
		assert.deepEqual(h.topology.waitingFor(), []);
		assert.deepEqual(
			h.settled.map((v) => v.id),
			[id],
		);
		assert.deepEqual(
			h.changes.map((c) => [c.from, c.to]),
			[
				["down", "assembling"],
				["assembling", "rehashing"],
				["rehashing", "ready"],
			],
		);
	});

	it("waits for participants that are not members too", async () => {
		const h = harness("a");
		h.topology.start();
		h.topology.update(["a", "b"], ["a", "b", "ingest-only"]);
		const id = h.topology.view.id;
		await waitFor(() => h.announced.length === 1, { message: "own announcement" });
		assert.deepEqual(h.topology.waitingFor(), ["b", "ingest-only"]);
		h.topology.handoffDone("b", id);
		assert.equal(h.topology.state, "rehashing");
		h.topology.handoffDone("ingest-only", id);
		assert.equal(h.topology.state, "ready");
	});

	it("a done received before this node took the view does not count (it may be stale); one received after does", async () => {
		const h = harness("a");
		h.topology.start();
		// b's done for {a,b} from an earlier time the cluster had these members (members flapped back).
		h.topology.handoffDone("b", idOf(["a", "b"]));
		h.topology.update(["a", "b"], ["a", "b"]);
		await sleep(50);
		assert.equal(h.topology.state, "rehashing", "a stale announcement must not settle the view");
		assert.deepEqual(h.topology.waitingFor(), ["b"]);
		// The topology service asks b again while rehashing; its answer for the current view counts.
		h.topology.handoffDone("b", h.topology.view.id);
		await waitFor(() => h.topology.state === "ready", { message: "ready" });
	});

	it("a new view moves ready → rehashing and calls onView with it", async () => {
		const h = harness("a");
		h.topology.start();
		h.topology.update(["a"], ["a"]);
		await waitFor(() => h.topology.state === "ready", { message: "ready" });
		const first = h.topology.view;
		h.topology.update(["a", "c"], ["a", "c"]);
		assert.equal(h.topology.state, "rehashing");
		assert.notEqual(h.topology.view, first);
		assert.equal(h.views[h.views.length - 1], h.topology.view);
		const last = h.changes[h.changes.length - 1];
		assert.deepEqual([last.from, last.to, last.members], ["ready", "rehashing", ["a", "c"]]);
		assert.equal(h.topology.settledView, first, "the old view stays the settled one until the new one settles");
		// The same member list again changes nothing.
		const views = h.views.length;
		h.topology.update(["c", "a", "a"], ["a", "c"]);
		assert.equal(h.views.length, views);
	});

	it("a newer view during rehashing restarts the barrier; done for the old view does not settle the new one", async () => {
		const log: string[] = [];
		const h = harness("a");
		const gated = gatedParticipant("p", log);
		h.topology.addParticipant(gated);
		h.topology.start();
		h.topology.update(["a", "b"], ["a", "b"]);
		const v1 = h.topology.view;
		await waitFor(() => gated.gates.has(v1.id), { message: "handoff of v1 started" });
		h.topology.handoffDone("b", v1.id);
		h.topology.update(["a", "b", "c"], ["a", "b", "c"]);
		const v2 = h.topology.view;
		assert.notEqual(v2.id, v1.id);
		assert.equal(h.topology.state, "rehashing");
		await waitFor(() => gated.gates.has(v2.id), { message: "handoff of v2 started" });
		// The old handoff finishing must not announce the old view.
		gated.gates.get(v1.id)!.resolve();
		await turns(10);
		assert.deepEqual(h.announced, [], "nothing announced for the superseded view");
		h.topology.handoffDone("b", v1.id);
		h.topology.handoffDone("c", v1.id);
		gated.gates.get(v2.id)!.resolve();
		await waitFor(() => h.announced.length === 1, { message: "announcement of v2" });
		assert.deepEqual(h.announced, [v2.id]);
		assert.equal(h.topology.state, "rehashing", "b and c said done for v1 only");
		assert.deepEqual(h.topology.waitingFor(), ["b", "c"]);
		h.topology.handoffDone("b", v2.id);
		h.topology.handoffDone("c", v2.id);
		assert.equal(h.topology.state, "ready");
		assert.deepEqual(
			h.settled.map((v) => v.id),
			[v2.id],
			"v1 never settled",
		);
	});

	it("a participant that disappears no longer blocks the barrier", async () => {
		const h = harness("a");
		h.topology.start();
		h.topology.update(["a"], ["a", "watcher"]);
		await waitFor(() => h.announced.length === 1, { message: "own announcement" });
		assert.deepEqual(h.topology.waitingFor(), ["watcher"]);
		const view = h.topology.view;
		h.topology.update(["a"], ["a"]);
		assert.equal(h.topology.state, "ready");
		assert.equal(h.topology.view, view, "same members: same view");
		// A member that disappears makes a new view without it, which settles without it.
		h.topology.update(["a", "b"], ["a", "b"]);
		await waitFor(() => h.announced.length === 2, { message: "announcement of [a,b]" });
		assert.equal(h.topology.state, "rehashing");
		h.topology.update(["a"], ["a"]);
		await waitFor(() => h.topology.state === "ready", { message: "ready without b" });
		assert.deepEqual(h.topology.view.members, ["a"]);
	});

	it("a participant's done is forgotten when it disappears and must come again", async () => {
		const h = harness("a");
		h.topology.start();
		h.topology.update(["a"], ["a", "x"]);
		const id = h.topology.view.id;
		h.topology.handoffDone("x", id);
		await waitFor(() => h.topology.state === "ready", { message: "ready" });
		h.topology.update(["a", "b"], ["a", "b"]);
		h.topology.update(["a"], ["a", "b", "x"]);
		assert.equal(h.topology.view.id, id, "back to the first member list");
		await waitFor(() => h.announced[h.announced.length - 1] === id && h.announced.length >= 2, { message: "own announcement of the list again" });
		assert.deepEqual(h.topology.waitingFor(), ["b", "x"], "x went away in between: its old done does not count");
	});

	it("runs participants' handoff in order and announces only after all of them resolved", async () => {
		const log: string[] = [];
		const h = harness("a");
		const first = gatedParticipant("first", log);
		const second = gatedParticipant("second", log);
		h.topology.addParticipant(first);
		h.topology.addParticipant(second);
		h.topology.start();
		h.topology.update(["a"], ["a"]);
		const id = h.topology.view.id;
		await waitFor(() => first.gates.has(id), { message: "first handoff" });
		await turns(10);
		assert.deepEqual(log, ["first start a"], "second waits for first");
		first.gates.get(id)!.resolve();
		await waitFor(() => second.gates.has(id), { message: "second handoff" });
		assert.deepEqual(h.announced, []);
		assert.equal(h.topology.state, "rehashing");
		second.gates.get(id)!.resolve();
		await waitFor(() => h.announced.length === 1, { message: "announcement" });
		assert.deepEqual(log, ["first start a", "first end a", "second start a", "second end a"]);
		assert.equal(h.topology.state, "ready");
	});

	it("runs every handoff again after one fails, and settles once all of them succeed", async () => {
		const h = harness("a");
		const runs: string[] = [];
		let failures = 1;
		h.topology.addParticipant({ handoff: async () => void runs.push("first") });
		h.topology.addParticipant({
			handoff: async () => {
				runs.push("second");
				if (failures-- > 0) throw new Error("JetStream cannot store now");
			},
		});
		h.topology.start();
		h.topology.update(["a"], ["a"]);
		await waitFor(() => h.topology.state === "ready", { message: "ready after the retry", timeoutMs: 5000 });
		assert.deepEqual(runs, ["first", "second", "first", "second"]);
		assert.equal(h.announced.length, 1);
	});

	it("onView comes before the state change, with the same view", () => {
		const order: string[] = [];
		const t = new Topology({ self: "a", consensus: 1, ringPoints: 160, announce: () => undefined });
		t.addParticipant({
			onView: (v) => order.push(`view ${v.members.join(",")}`),
			onStateChange: (from, to, v) => order.push(`${from}→${to} ${v.members.join(",")}`),
		});
		t.update(["a", "b"], ["a", "b"]);
		t.start();
		assert.deepEqual(order, ["view a,b", "down→rehashing a,b"]);
	});

	it("falling below consensus drops to assembling with an empty view", async () => {
		const h = harness("a", 2);
		h.topology.start();
		h.topology.update(["a", "b"], ["a", "b"]);
		h.topology.handoffDone("b", h.topology.view.id);
		await waitFor(() => h.topology.state === "ready", { message: "ready" });
		h.topology.update(["a"], ["a"]);
		assert.equal(h.topology.state, "assembling");
		assert.equal(h.topology.active, false);
		assert.deepEqual(h.topology.view.members, []);
		assert.deepEqual(h.views[h.views.length - 1].members, [], "participants are told to let go of every key");
		assert.equal(h.topology.settledView, null);
		const last = h.changes[h.changes.length - 1];
		assert.deepEqual([last.from, last.to, last.members], ["ready", "assembling", []]);
	});
});

describe("Topology.leave", () => {
	it("goes to stopping with a view without itself and resolves after the handoff", async () => {
		const log: string[] = [];
		const h = harness("a");
		h.topology.start();
		h.topology.update(["a", "b"], ["a", "b"]);
		h.topology.handoffDone("b", h.topology.view.id);
		await waitFor(() => h.topology.state === "ready", { message: "ready" });
		const gated = gatedParticipant("p", log);
		h.topology.addParticipant(gated);
		const leaving = h.topology.leave();
		assert.equal(h.topology.state, "stopping");
		assert.equal(h.topology.active, false);
		assert.deepEqual(h.topology.view.members, ["b"]);
		assert.equal(h.topology.isMember, false);
		assert.equal(h.topology.ownerOf("key_1"), "b");
		const last = h.changes[h.changes.length - 1];
		assert.deepEqual([last.from, last.to, last.members], ["ready", "stopping", ["b"]]);
		const id = h.topology.view.id;
		await waitFor(() => gated.gates.has(id), { message: "leave handoff started" });
		assert.equal(await isSettled(leaving), false, "leave waits for the handoff");
		gated.gates.get(id)!.resolve();
		await leaving;
		assert.equal(h.announced[h.announced.length - 1], id, "the leave view is announced");
		assert.equal(h.topology.state, "stopping");
		h.topology.stopped();
		assert.equal(h.topology.state, "stopped");
		h.topology.update(["a", "b", "c"], ["a", "b", "c"]);
		assert.equal(h.topology.state, "stopped", "nothing moves a stopped node");
		const final = h.changes[h.changes.length - 1];
		assert.deepEqual([final.from, final.to], ["stopping", "stopped"]);
	});

	it("a leaving node that is done says so again on every change of the cluster, for nodes that started listening later", async () => {
		const h = harness("a");
		h.topology.start();
		h.topology.update(["a", "b"], ["a", "b"]);
		h.topology.handoffDone("b", h.topology.view.id);
		await waitFor(() => h.topology.state === "ready", { message: "ready" });
		await h.topology.leave();
		const id = h.topology.view.id;
		const before = h.announced.length;
		h.topology.update(["b"], ["b", "c"]);
		assert.deepEqual(h.announced.slice(before), [id], "announced again to the node that connected");
		h.topology.update(["b", "c"], ["b", "c"]);
		const next = h.topology.view.id;
		assert.notEqual(next, id);
		assert.deepEqual(h.announced.slice(before), [id], "not done with the new view yet: nothing announced for it");
		await waitFor(() => h.announced[h.announced.length - 1] === next, { message: "the new view announced after its handoff" });
		h.topology.stopped();
		const after = h.announced.length;
		h.topology.update(["b", "c", "d"], ["b", "c", "d"]);
		assert.equal(h.announced.length, after, "a stopped node announces nothing");
	});

	it("the last member leaving ends with an empty view", async () => {
		const h = harness("a");
		h.topology.start();
		h.topology.update(["a"], ["a"]);
		await waitFor(() => h.topology.state === "ready", { message: "ready" });
		await h.topology.leave();
		assert.equal(h.topology.state, "stopping");
		assert.deepEqual(h.topology.view.members, []);
		assert.equal(h.topology.ownerOf("k"), null);
	});

	it("a participant that is not a member (e.g. ingest only) can leave too", async () => {
		const h = harness("ingest-1");
		h.topology.start();
		h.topology.update(["a"], ["a", "ingest-1"]);
		h.topology.handoffDone("a", h.topology.view.id);
		await waitFor(() => h.topology.state === "ready", { message: "ready" });
		const leaving = h.topology.leave();
		assert.equal(h.topology.state, "stopping");
		const done = await Promise.race([leaving.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 500))]);
		assert.equal(done, true, "leave() did not resolve within 500 ms");
	});
});
