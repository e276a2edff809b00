/**
 * The REPL's pure parts, without a broker: lib/repl/format.ts (progress bars,
 * counts, tables, option parsing, ring shares, the processed tally) and the
 * wording of failed calls in lib/repl/errors.ts.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Errors } from "moleculer";
import { describeCallError } from "../../lib/repl/errors";
import {
	formatCount,
	formatDuration,
	formatPercent,
	formatRecord,
	formatTable,
	parseInteger,
	ProcessedTally,
	ratePerSecond,
	renderProgress,
	ringShare,
	showValue,
	truncate,
	UsageError,
} from "../../lib/repl/format";
import { Ring } from "../../lib/ring";

describe("lib/repl/format", () => {
	it("renders a progress bar with counts, percent and rate, clamped to the total", () => {
		const line = renderProgress({ label: "publish", done: 500, total: 2000, elapsedMs: 250, width: 20 });
		assert.equal(line, "publish  [#####...............]  500/2,000   25.0%  2,000 msg/s");
		assert.match(renderProgress({ label: "p", done: 3000, total: 2000, elapsedMs: 1000, width: 4 }), /\[####\]  2,000\/2,000  100\.0%  2,000 msg\/s$/);
		assert.match(renderProgress({ label: "p", done: 0, total: 0, elapsedMs: 0, width: 4 }), /\[####\]  0\/0  100\.0%  0 msg\/s$/);
	});

	it("formats counts, rates, durations, percents and values", () => {
		assert.equal(formatCount(1234567), "1,234,567");
		assert.equal(formatCount(-1000), "-1,000");
		assert.equal(formatCount(999.6), "1,000");
		assert.equal(ratePerSecond(500, 250), 2000);
		assert.equal(ratePerSecond(500, 0), 0);
		assert.equal(formatDuration(850), "850 ms");
		assert.equal(formatDuration(1234), "1.2 s");
		assert.equal(formatDuration(125_000), "2 min 5 s");
		assert.equal(formatPercent(1 / 3), "33.3%");
		assert.equal(truncate("abcdef", 4), "abc…");
		assert.equal(truncate("a\nb", 10), "a\\nb");
		assert.equal(showValue({ a: 1 }), '{"a":1}');
		assert.equal(showValue("text"), "text");
		assert.equal(showValue(null), "null");
	});

	it("aligns a table: numbers right, text left, missing cells as -", () => {
		const lines = formatTable(
			["node", "count", "note"],
			[
				["a", 5, "x"],
				["bbb", 1234, null],
			],
		);
		assert.deepEqual(lines, ["node  count  note", "----  -----  ----", "a         5  x", "bbb   1,234  -"]);
		assert.deepEqual(
			formatRecord([
				["id", "key_1"],
				["pending", 3],
			]),
			["id       key_1", "pending  3"],
		);
	});

	it("parses whole-number options with clear errors", () => {
		assert.equal(parseInteger("2000", "--messages"), 2000);
		assert.equal(parseInteger("10_000", "--messages"), 10000);
		assert.equal(parseInteger(undefined, "--batch", { fallback: 1000 }), 1000);
		assert.equal(parseInteger("0", "--wait", { min: 0 }), 0);
		assert.throws(
			() => parseInteger("abc", "--messages"),
			(e: Error) => e instanceof UsageError && /--messages must be a whole number from 1, got "abc"/.test(e.message),
		);
		assert.throws(() => parseInteger("0", "--keys"), /--keys must be a whole number from 1, got 0/);
		assert.throws(() => parseInteger(undefined, "--keys"), /--keys is required/);
		assert.throws(() => parseInteger(true, "--keys"), /--keys must be a whole number/);
		assert.throws(() => parseInteger("1.5", "--keys"), /--keys must be a whole number/);
	});

	it("computes ring shares that match the ring and add up to 100%", () => {
		assert.deepEqual([...ringShare(["solo"])], [["solo", 1]]);
		assert.equal(ringShare([]).size, 0);
		const members = ["node-c", "node-a", "node-b"];
		const share = ringShare(members, 160, 3000);
		assert.deepEqual([...share.keys()], ["node-a", "node-b", "node-c"]);
		const sum = [...share.values()].reduce((a, b) => a + b, 0);
		assert.ok(Math.abs(sum - 1) < 1e-9);
		for (const fraction of share.values()) assert.ok(fraction > 0.15 && fraction < 0.55, `share ${fraction} is far from a third`);
		const ring = Ring.of(members, 160);
		let ownedByA = 0;
		for (let i = 1; i <= 3000; i++) if (ring.ownerOf(`key_${i}`) === "node-a") ownedByA++;
		assert.equal(share.get("node-a"), ownedByA / 3000);
	});

	it("tallies processed counters from a baseline, across joins and restarts", () => {
		const tally = new ProcessedTally();
		tally.observe("a", 100);
		tally.observe("b", 50);
		tally.startCounting();
		assert.equal(tally.delta(), 0);
		tally.observe("a", 130);
		tally.observe("b", 60);
		assert.equal(tally.delta(), 40);
		tally.observe("c", 5); // joined during the run
		assert.equal(tally.delta(), 45);
		tally.observe("a", 10); // restarted: 30 were counted before
		assert.equal(tally.delta(), 30 + 10 + 10 + 5);
		assert.deepEqual(tally.nodes().sort(), ["a", "b", "c"]);
	});
});

describe("lib/repl/errors", () => {
	it("words failed calls as one line", () => {
		assert.equal(
			describeCallError(new Errors.ServiceNotFoundError({ action: "ingest.publish" }), "ingest.publish").message,
			"ingest.publish is not reachable: no available node runs the ingest service",
		);
		assert.equal(
			describeCallError(new Errors.ServiceNotAvailableError({ action: "worker.stats", nodeID: "n1" }), "worker.stats", "n1").message,
			"worker.stats is not reachable on n1: that node runs no worker service (or has left)",
		);
		assert.equal(
			describeCallError(new Errors.RequestTimeoutError({ action: "store.dead", nodeID: "n2" }), "store.dead", "n2").message,
			"store.dead timed out on n2",
		);
		assert.equal(
			describeCallError(new Errors.ValidationError("bad", "VALIDATION_ERROR", [{ message: "The 'key' field is required." }]), "topology.whois").message,
			"topology.whois refused the parameters: The 'key' field is required.",
		);
		assert.equal(describeCallError(new Error("boom"), "x.y").message, "x.y failed: boom");
	});
});
