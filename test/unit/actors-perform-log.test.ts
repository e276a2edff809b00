/**
 * The lag histogram and the perform log.
 */
import assert from "node:assert/strict";
import * as fs from "fs";
import { describe, it } from "node:test";
import { LagHistogram } from "../../lib/actors/lag";
import { findOverlaps, parsePerformLog, PerformLog, type PerformRecord } from "../../lib/actors/perform-log";
import { tmp } from "../support/actors";

describe("LagHistogram", () => {
	it("gives p50/p99 in ms buckets and starts over on take()", () => {
		const lag = new LagHistogram();
		assert.deepEqual(lag.snapshot(), { p50: 0, p99: 0, count: 0 });
		for (let i = 1; i <= 100; i++) lag.record(i);
		assert.deepEqual(lag.snapshot(), { p50: 50, p99: 99, count: 100 });
		lag.record(-5);
		lag.record(10_000);
		assert.equal(lag.snapshot().count, 102);
		assert.deepEqual(lag.take(), { p50: 50, p99: 100, count: 102 }, "rank 101 of 102 is the value 100");
		assert.deepEqual(lag.snapshot(), { p50: 0, p99: 0, count: 0 });
		for (let i = 0; i < 100; i++) lag.record(5000);
		assert.equal(lag.snapshot().p99, 1000, "overflow bucket");
	});
});

describe("PerformLog", () => {
	it("writes lines that parsePerformLog reads back", () => {
		const file = tmp.file("pl.log");
		const log = new PerformLog(file, "n7");
		const t0 = log.now();
		log.record("k1", t0, t0 + 1.5, 3);
		log.record("k2", t0 + 2, t0 + 3, 1);
		log.close();
		const records = parsePerformLog(fs.readFileSync(file, "utf8"));
		assert.equal(records.length, 2);
		assert.deepEqual(
			records.map((r) => [r.key, r.node, r.messages]),
			[
				["k1", "n7", 3],
				["k2", "n7", 1],
			],
		);
		assert.ok(Math.abs(records[0].end - records[0].start - 1.5) < 0.002);
	});

	it("findOverlaps finds exactly the keys performed on two nodes at once", () => {
		const brute = (records: PerformRecord[]) => {
			const keys = new Set<string>();
			for (const a of records)
				for (const b of records) if (a !== b && a.key === b.key && a.node !== b.node && a.start < b.end && b.start < a.end) keys.add(a.key);
			return keys;
		};
		let seed = 7;
		const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
		for (let round = 0; round < 300; round++) {
			const records: PerformRecord[] = [];
			for (let i = 0; i < 12; i++) {
				const start = Math.floor(rand() * 100);
				records.push({ key: `k${Math.floor(rand() * 3)}`, node: `n${Math.floor(rand() * 3)}`, start, end: start + 1 + Math.floor(rand() * 20), messages: 1 });
			}
			const expected = brute(records);
			const found = findOverlaps(records.map((r) => ({ ...r })));
			assert.deepEqual(new Set(found.map(([a]) => a.key)), expected, `round ${round}`);
			for (const [a, b] of found) assert.ok(a.key === b.key && a.node !== b.node && a.start < b.end && b.start < a.end);
		}
		assert.deepEqual(
			findOverlaps([
				{ key: "k", node: "a", start: 0, end: 10, messages: 1 },
				{ key: "k", node: "b", start: 10, end: 20, messages: 1 },
			]),
			[],
			"touching is not overlapping",
		);
	});
});
