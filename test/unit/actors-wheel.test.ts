/**
 * The timer wheel that schedules periodic performs and retries.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TimerWheel, type WheelEntry } from "../../lib/actors/wheel";

describe("TimerWheel", () => {
	interface E extends WheelEntry {
		name: string;
	}
	const entry = (name: string): E => ({ name, due: 0 });

	it("fires entries once, in due order, not before their time", () => {
		const wheel = new TimerWheel<E>(10, 8, 0);
		const fired: string[] = [];
		const a = entry("a");
		const b = entry("b");
		const c = entry("c");
		wheel.schedule(b, 30, 0);
		wheel.schedule(a, 10, 0);
		wheel.schedule(c, 200, 0); // beyond one turn of the 8-slot wheel
		wheel.advance(25, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a"]);
		wheel.advance(35, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a", "b"]);
		wheel.advance(195, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a", "b"], "c is not due after one turn of the wheel");
		wheel.advance(205, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a", "b", "c"]);
		wheel.advance(1000, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a", "b", "c"], "each fires once");
	});

	it("cancel and reschedule leave one firing at the new time; late firings report their lateness", () => {
		const wheel = new TimerWheel<E>(10, 16, 0);
		const fired: [string, number][] = [];
		const a = entry("a");
		wheel.schedule(a, 20, 0);
		wheel.schedule(a, 50, 0);
		const b = entry("b");
		wheel.schedule(b, 20, 0);
		wheel.cancel(b);
		wheel.advance(40, (e, late) => fired.push([e.name, late]));
		assert.equal(fired.length, 0);
		wheel.advance(75, (e, late) => fired.push([e.name, late]));
		assert.deepEqual(fired, [["a", 25]]);
	});

	it("never fires an entry before its delay has passed", () => {
		const wheel = new TimerWheel<E>(10, 64, 0);
		const fired: string[] = [];
		const a = entry("a");
		wheel.schedule(a, 10, 3); // due at 13
		wheel.advance(10, (e) => fired.push(e.name));
		assert.equal(fired.length, 0, "fired at 10, 3 ms before it was due");
		wheel.advance(20, (e) => fired.push(e.name));
		assert.deepEqual(fired, ["a"]);
	});

	it("a budget stops advancing early and the rest fires on the next call", () => {
		const wheel = new TimerWheel<E>(10, 64, 0);
		const all = Array.from({ length: 10 }, (_, i) => entry(`e${i}`));
		for (const [i, e] of all.entries()) wheel.schedule(e, 10 * (i + 1), 0);
		const fired: string[] = [];
		assert.equal(
			wheel.advance(200, (e) => fired.push(e.name), 3),
			false,
		);
		assert.deepEqual(fired, ["e0", "e1", "e2"]);
		assert.equal(
			wheel.advance(200, (e) => fired.push(e.name)),
			true,
		);
		assert.equal(fired.length, 10);
	});
});
