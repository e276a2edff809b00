/**
 * Topology changes that overlap, with real node processes: a node joins while
 * another one leaves gracefully. Checked from the results queue (every id
 * performed once, in order per key) and the perform log (no key on two nodes
 * at once).
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { TestCluster } from "../support/cluster";
import { isClean, summary, trace, verify } from "../support/verify";
import { sleep, waitFor } from "../support/wait";

/** Whether the observer sees nodeID connected (a starting node connects before it announces its services). */
function connected(cluster: TestCluster, nodeID: string): boolean {
	return (cluster.observer.registry.getNodeList({ onlyAvailable: true, withServices: false }) as { id: string }[]).some((n) => n.id === nodeID);
}

/**
 * Three nodes under a steady load with 20 ms of work per perform; a fourth
 * starts and, while it is still listening for its peers, `leaver` gets SIGTERM.
 */
async function joinDuringLeave(cluster: TestCluster, leaver: string): Promise<void> {
	// The leaver's performs take 3 s and its handoff waits for them: the joiner is ready to settle long before the leaver is done.
	const [n1, n2, n3] = ["n1", "n2", "n3"].map((id) => cluster.node(id, id === leaver ? { KEYHIVE_DEMO_WORK_MS: "3000" } : {}));
	// n1 first: its ingest is the inbox's active consumer until it leaves.
	n1.start();
	await cluster.ready(["n1"]);
	n2.start();
	n3.start();
	await cluster.ready(["n1", "n2", "n3"]);
	const n4 = cluster.node("n4");
	const producer = cluster.producer();
	await producer.start();
	producer.startSteady(300, 100, 3000);
	try {
		await sleep(2000);
		n4.start();
		await waitFor(() => connected(cluster, "n4"), { timeoutMs: 30_000, message: "n4 connected" });
		const leaving = cluster.nodes.get(leaver)!.stop();
		const stayers = ["n1", "n2", "n3", "n4"].filter((id) => id !== leaver);
		await cluster.ready(stayers, 40_000);
		await leaving;
		await sleep(1000);
		await producer.stopSteady();
		const published = producer.published.length;
		await waitFor(() => cluster.results.distinctIds() >= published, { timeoutMs: 40_000, message: `${published} results` }).catch((err) => {
			throw new Error(`${(err as Error).message}\n${summary(verify(producer.published, cluster.results.results))}\n${cluster.logs()}`);
		});
		const verdict = verify(producer.published, cluster.results.results);
		const traces = [...verdict.outOfOrder, ...verdict.badCounts].slice(0, 3).map((k) => `${k}: ${trace(producer.published, cluster.results.results, k)}`);
		assert.ok(isClean(verdict), `${summary(verdict)}\n${traces.join("\n")}\n${cluster.logs()}`);
		assert.ok(published >= 15_000, `a real load flowed (${published} messages)`);
		const performs = cluster.performOverlaps();
		assert.ok(performs.records > 1000, `perform log has ${performs.records} records`);
		assert.deepEqual(performs.overlaps, [], "no key was performed on two nodes at once");
	} finally {
		await producer.close();
	}
}

describe("a node joining while another leaves", () => {
	const cluster = new TestCluster({ KEYHIVE_ACTORS: "20000", KEYHIVE_DEMO_WORK_MS: "20" });
	before(() => cluster.open());
	after(() => cluster.close());

	it("keeps every message performed once, in order per key, and no key on two nodes at once, when a member leaves while the joiner discovers its peers", async () => {
		await joinDuringLeave(cluster, "n2");
	});
});

describe("the inbox's active consumer leaving while a node joins", () => {
	const cluster = new TestCluster({ KEYHIVE_ACTORS: "20000", KEYHIVE_DEMO_WORK_MS: "20" });
	before(() => cluster.open());
	after(() => cluster.close());

	it("keeps every message performed once, in order per key, and no key on two nodes at once, when the consuming node leaves while the joiner discovers its peers", async () => {
		await joinDuringLeave(cluster, "n1");
	});
});
