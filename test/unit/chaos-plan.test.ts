/**
 * The chaos soak's seeded PRNG and action scheduler: the same seed gives the
 * same run, and no plan ever goes below two nodes, above its maximum, or
 * stops or kills c1.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ArgsError, parseArgs } from "../chaos/args";
import { ChaosPlan, type Action, type ActionKind } from "../chaos/plan";
import { mulberry32, Prng } from "../chaos/prng";

function actions(seed: number, count: number, initialNodes = 4, kinds?: ActionKind[]): Action[] {
	const plan = new ChaosPlan(new Prng(seed), { initialNodes, kinds });
	const list: Action[] = [];
	for (let i = 0; i < count; i++) {
		const action = plan.next();
		if (!action) break;
		list.push(action);
	}
	return list;
}

describe("mulberry32 / Prng", () => {
	it("gives the same sequence for the same seed and another for another seed", () => {
		const a = mulberry32(42);
		const b = mulberry32(42);
		const c = mulberry32(43);
		const seqA = Array.from({ length: 1000 }, () => a());
		const seqB = Array.from({ length: 1000 }, () => b());
		const seqC = Array.from({ length: 1000 }, () => c());
		assert.deepEqual(seqA, seqB);
		assert.notDeepEqual(seqA, seqC);
	});

	it("matches the reference mulberry32 output (so a seed means the same run on every machine)", () => {
		const next = mulberry32(1);
		// Reference values of mulberry32 seeded with 1 (t += 0x6D2B79F5 variant).
		const expected = [2693262067, 11749833, 2265367787];
		for (const value of expected) assert.equal(Math.round(next() * 4294967296), value);
	});

	it("stays in range: float in [0, 1), int in [min, max] reaching both ends, pick from the list", () => {
		const rng = new Prng(7);
		const seen = new Set<number>();
		for (let i = 0; i < 10_000; i++) {
			const f = rng.float();
			assert.ok(f >= 0 && f < 1);
			const n = rng.int(3, 6);
			assert.ok(Number.isInteger(n) && n >= 3 && n <= 6);
			seen.add(n);
			assert.ok(["a", "b"].includes(rng.pick(["a", "b"])));
		}
		assert.deepEqual([...seen].sort(), [3, 4, 5, 6]);
	});

	it("refuses a seed outside 0..2^32-1 and empty ranges", () => {
		assert.throws(() => new Prng(-1), RangeError);
		assert.throws(() => new Prng(2 ** 32), RangeError);
		assert.throws(() => new Prng(1.5), RangeError);
		assert.throws(() => new Prng(1).int(5, 4), RangeError);
		assert.throws(() => new Prng(1).pick([]), RangeError);
	});
});

describe("ChaosPlan", () => {
	it("is reproducible: the same seed plans the same actions, targets and delays", () => {
		assert.deepEqual(actions(42, 200), actions(42, 200));
		assert.notDeepEqual(actions(42, 50), actions(43, 50));
	});

	it("never goes below 2 nodes, never above nodes + 2, never stops or kills c1, over many seeds", () => {
		for (let seed = 0; seed < 300; seed++) {
			for (const initial of [2, 3, 4, 6]) {
				const plan = new ChaosPlan(new Prng(seed), { initialNodes: initial });
				let running = new Set(plan.nodes);
				for (let i = 0; i < 100; i++) {
					const action = plan.next();
					assert.ok(action, "with every kind allowed there is always a next action");
					assert.deepEqual(new Set(action.before), running, "the plan's view of the cluster is what its actions made");
					assert.ok(action.delayMs >= 8000 && action.delayMs <= 15_000, `delay ${action.delayMs}`);
					switch (action.kind) {
						case "scale-out":
							assert.ok(!running.has(action.target), "a scale-out starts a node that does not run");
							running.add(action.target);
							break;
						case "scale-in":
						case "lose":
							assert.notEqual(action.target, "c1");
							assert.ok(running.has(action.target));
							running.delete(action.target);
							break;
						case "stall":
							assert.notEqual(action.target, "c1");
							assert.ok(running.has(action.target));
							assert.ok(running.size - 1 >= 2, `seed ${seed}: a stall with ${running.size} running leaves fewer than 2`);
							break;
						case "kill-restart":
							assert.notEqual(action.target, "c1");
							assert.ok(running.has(action.target));
							// While the killed node is down, at least 2 others run.
							assert.ok(running.size - 1 >= 2, `seed ${seed}: a kill with ${running.size} running leaves fewer than 2`);
							assert.ok(action.downMs! >= 2000 && action.downMs! <= 5000);
							break;
						case "close-amqp":
							assert.ok(running.has(action.target));
							break;
					}
					assert.ok(running.size >= 2, `seed ${seed}: ${running.size} nodes after #${action.seq}`);
					assert.ok(running.size <= initial + 2, `seed ${seed}: ${running.size} nodes after #${action.seq}`);
					assert.deepEqual(new Set(action.after), running);
					assert.ok(running.has("c1"), "c1 always runs");
					running = new Set(action.after);
				}
			}
		}
	});

	it("uses every kind of action, and with two nodes only scale-out and close-amqp", () => {
		const kinds = new Set(actions(1, 200).map((a) => a.kind));
		assert.deepEqual([...kinds].sort(), ["close-amqp", "kill-restart", "lose", "scale-in", "scale-out", "stall"]);
		const plan = new ChaosPlan(new Prng(5), { initialNodes: 2 });
		assert.deepEqual(plan.allowed().sort(), ["close-amqp", "scale-out"]);
	});

	it("never names a node twice for a scale-out (new nodes get new names)", () => {
		const started = actions(9, 300)
			.filter((a) => a.kind === "scale-out")
			.map((a) => a.target);
		assert.equal(new Set(started).size, started.length);
		assert.ok(started.every((name) => /^c\d+$/.test(name) && Number(name.slice(1)) > 4));
	});

	it("respects a restricted set of kinds, and says when nothing is allowed", () => {
		assert.ok(actions(3, 100, 3, ["kill-restart", "close-amqp"]).every((a) => a.kind === "kill-restart" || a.kind === "close-amqp"));
		const plan = new ChaosPlan(new Prng(3), { initialNodes: 2, kinds: ["scale-in"] });
		assert.equal(plan.next(), null, "scale-in alone with 2 nodes: nothing to do");
		const grow = new ChaosPlan(new Prng(3), { initialNodes: 3, kinds: ["scale-out"] });
		assert.equal(grow.next()?.target, "c4");
		assert.equal(grow.next()?.target, "c5");
		assert.equal(grow.next(), null, "at the maximum of 5");
	});

	it("refuses a cluster below the minimum", () => {
		assert.throws(() => new ChaosPlan(new Prng(1), { initialNodes: 1 }), RangeError);
		assert.throws(() => new ChaosPlan(new Prng(1), { initialNodes: 3, maxNodes: 2 }), RangeError);
	});
});

describe("soak arguments", () => {
	it("reads the documented form and its defaults", () => {
		const args = parseArgs(["--nodes", "4", "--minutes", "1.5", "--seed=42"]);
		assert.equal(args.nodes, 4);
		assert.equal(args.minutes, 1.5);
		assert.equal(args.seed, 42);
		assert.equal(args.rate, 300);
		assert.equal(args.keys, 500);
	});

	it("says what is wrong with a bad argument in one sentence", () => {
		const cases: [string[], RegExp][] = [
			[["--minutes", "3"], /--nodes is required/],
			[["--nodes", "4"], /--minutes is required/],
			[["--nodes", "1", "--minutes", "3"], /--nodes must be between 2 and 12/],
			[["--nodes", "four", "--minutes", "3"], /--nodes must be a whole number/],
			[["--nodes", "4", "--minutes"], /--minutes needs a value/],
			[["--nodes", "4", "--minutes", "3", "--seed", "-1"], /--seed must be between/],
			[["--nodes", "4", "--minutes", "3", "--frobnicate"], /unknown argument "--frobnicate"/],
			[["--nodes", "4", "--minutes", "3", "--actions", "scale-out,explode"], /unknown action explode/],
			[["--nodes", "4", "--nodes", "5", "--minutes", "3"], /given twice/],
		];
		for (const [argv, message] of cases) {
			assert.throws(
				() => parseArgs(argv),
				(err: Error) => err instanceof ArgsError && message.test(err.message) && !err.message.includes("\n"),
				argv.join(" "),
			);
		}
	});
});
