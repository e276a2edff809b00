import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { DurableStore } from "../../lib/durable/durable-store";
import { NotRoutableError, Router } from "../../lib/ingest/router";
import { type Shipment, Store } from "../../lib/store/store";
import { viewOf } from "../../lib/topology/topology";

const stores: Store[] = [];
after(() => {
	for (const s of stores) s.close();
});

const VIEW = viewOf(["a", "b", "c"]);
const KEYS = Array.from({ length: 60 }, (_, i) => `key_${i}`);

function setup(options: { active?: boolean; failFor?: string } = {}) {
	const stores_ = new Map(["a", "b", "c"].map((n) => [n, new Store(":memory:")]));
	for (const s of stores_.values()) stores.push(s);
	const calls: { node: string; shipment: Shipment }[] = [];
	const router = new Router({
		self: "a",
		topology: { active: options.active ?? true, view: VIEW, state: options.active === false ? "assembling" : "ready" },
		durable: DurableStore.local(stores_.get("a")!),
		ship: async (node, _viewId, shipment) => {
			calls.push({ node, shipment });
			if (node === options.failFor) throw new Error(`${node} is unreachable`);
			const result = stores_.get(node)!.receive(shipment);
			return { stored: result.stored.length, duplicates: result.duplicates };
		},
		batchRows: 1000,
	});
	return { router, stores: stores_, calls };
}

const rows = () => KEYS.map((key, i) => ({ id: `m${i}`, key, payload: "x", stamp: 100 + i }));

describe("routing entering rows to their owners", () => {
	it("rows of keys this node owns are stored here, every other row at its owner, with the inbox epoch, one call per owner", async () => {
		const { router, stores: s, calls } = setup();
		const result = await router.route(rows(), 7);
		assert.deepEqual(result, { stored: KEYS.length, duplicates: 0 });
		for (const [node, store] of s) {
			const expected = KEYS.filter((k) => VIEW.ring.ownerOf(k) === node).sort();
			const held = store.scan(0, 1000).map((r) => r.key);
			assert.deepEqual(held.sort(), expected, `${node} holds exactly its keys`);
		}
		assert.deepEqual(calls.map((c) => c.node).sort(), ["b", "c"]);
		assert.ok(calls.every((c) => c.shipment.routed === 7));
		assert.equal(s.get("b")!.scan(0, 1000)[0].stamp >= 100, true, "stamps travel with the rows");
	});

	it("without a view with consensus nothing is routed", async () => {
		const { router, calls } = setup({ active: false });
		await assert.rejects(router.route(rows()), NotRoutableError);
		assert.equal(calls.length, 0);
	});

	it("a route that failed at one owner is tried again as a whole and stores nothing twice", async () => {
		const failing = setup({ failFor: "c" });
		await assert.rejects(failing.router.route(rows(), 1), /unreachable/);
		const again = new Router({
			self: "a",
			topology: { active: true, view: VIEW, state: "ready" },
			durable: DurableStore.local(failing.stores.get("a")!),
			ship: async (node, _v, shipment) => {
				const r = failing.stores.get(node)!.receive(shipment);
				return { stored: r.stored.length, duplicates: r.duplicates };
			},
			batchRows: 1000,
		});
		const result = await again.route(rows(), 1);
		const ownedByC = KEYS.filter((k) => VIEW.ring.ownerOf(k) === "c").length;
		assert.equal(result.stored, ownedByC, "only c's rows were stored the second time");
		assert.equal(result.duplicates, KEYS.length - ownedByC);
	});

	it("no rows need no view", async () => {
		const { router } = setup({ active: false });
		assert.deepEqual(await router.route([]), { stored: 0, duplicates: 0 });
	});
});
