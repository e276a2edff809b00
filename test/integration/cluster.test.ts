/**
 * Real node processes (`npm run node`) on the real NATS and RabbitMQ, each with
 * its own data dir: joins, graceful leaves, crashes and restarts while messages
 * flow, checked from the results queue and the perform log.
 */
import assert from "node:assert/strict";
import * as fs from "fs";
import { after, before, describe, it } from "node:test";
import type { ServiceBroker } from "moleculer";
import { findOverlaps, parsePerformLog } from "../../lib/actors/perform-log";
import { callAction } from "../../lib/contracts";
import { TestCluster } from "../support/cluster";
import { freePort } from "../support/env";
import { NatsServer } from "../support/nats-server";
import { tempDir } from "../support/tmp";
import { sleep, waitFor } from "../support/wait";
import { isClean, summary, trace, verify, type PublishedMessage } from "../support/verify";

describe("a cluster under change", () => {
	const cluster = new TestCluster();
	before(() => cluster.open());
	after(() => cluster.close());

	it("keeps every message performed once, in order per key, and no key on two nodes at once, through a join, a graceful leave and a crash", async () => {
		const [n1, n2, n3, n4] = ["n1", "n2", "n3", "n4"].map((id) => cluster.node(id));
		// n1 first: its ingest is the active consumer of the inbox throughout.
		n1.start();
		await cluster.ready(["n1"]);
		n2.start();
		n3.start();
		await cluster.ready(["n1", "n2", "n3"]);
		const producer = cluster.producer();
		await producer.start();
		producer.startSteady(40, 100, 400);
		try {
			await sleep(3000);
			n4.start();
			await cluster.ready(["n1", "n2", "n3", "n4"]);
			await sleep(3000);
			await n2.stop();
			await cluster.ready(["n1", "n3", "n4"]);
			await sleep(2000);
			await n3.kill();
			await cluster.ready(["n1", "n4"]);
			await sleep(2000);
			n3.start();
			await cluster.ready(["n1", "n3", "n4"]);
			await sleep(2000);
			await producer.stopSteady();
			const published = producer.published.length;
			await waitFor(() => cluster.results.distinctIds() >= published, { timeoutMs: 60_000, message: `${published} results` }).catch((err) => {
				throw new Error(`${(err as Error).message}\n${summary(verify(producer.published, cluster.results.results))}\n${cluster.logs()}`);
			});
			const verdict = verify(producer.published, cluster.results.results);
			const traces = [...verdict.badCounts, ...verdict.outOfOrder].slice(0, 3).map((k) => `${k}: ${trace(producer.published, cluster.results.results, k)}`);
			assert.ok(isClean(verdict), `${summary(verdict)}\n${traces.join("\n")}\n${cluster.logs()}`);
			assert.ok(published > 4000, `a real load flowed (${published} messages)`);
			const performs = cluster.performOverlaps();
			assert.ok(performs.records > 1000, `perform log has ${performs.records} records`);
			assert.deepEqual(performs.overlaps, [], "no key was performed on two nodes at once");
		} finally {
			await producer.close();
		}
	});
});

/** Appends messages through one node's store.append action. */
async function appendThrough(broker: ServiceBroker, nodeID: string, prefix: string, count: number, keys: number): Promise<PublishedMessage[]> {
	const published: PublishedMessage[] = [];
	for (let from = 0; from < count; from += 500) {
		const messages = Array.from({ length: Math.min(500, count - from) }, (_, i) => {
			const n = from + i;
			return { id: `${prefix}-${n}`, key: `key_${(n % keys) + 1}`, payload: String(n) };
		});
		await broker.call("store.append", { messages }, { nodeID });
		published.push(...messages.map((m) => ({ id: m.id, key: m.key })));
	}
	return published;
}

describe("a minority", () => {
	const cluster = new TestCluster({ KEYHIVE_CONSENSUS: "2" });
	before(() => cluster.open());
	after(() => cluster.close());

	it("processes nothing alone with KEYHIVE_CONSENSUS=2, and everything once a second member joins", async () => {
		const n1 = cluster.node("n1");
		n1.start();
		await waitFor(async () => (await callAction(cluster.observer, "topology.state", {}, { nodeID: "n1" })).state === "assembling", {
			timeoutMs: 30_000,
			message: "n1 assembling",
		});
		const published = await appendThrough(cluster.observer, "n1", "minority", 1000, 100);
		await sleep(2000);
		const alone = await callAction(cluster.observer, "worker.stats", {}, { nodeID: "n1" });
		assert.equal(alone.state, "assembling");
		assert.equal(alone.processed, 0);
		assert.equal(alone.actors, 0, "a node without consensus holds no actor");
		assert.equal(cluster.results.results.length, 0);
		cluster.node("n2").start();
		await cluster.ready(["n1", "n2"]);
		await waitFor(() => cluster.results.distinctIds() >= 1000, { timeoutMs: 30_000, message: "1000 results" });
		const verdict = verify(published, cluster.results.results);
		assert.ok(isClean(verdict), summary(verdict));
	});
});

describe("a node killed in the middle of a handoff", () => {
	const cluster = new TestCluster({ KEYHIVE_CONSENSUS: "2" });
	before(() => cluster.open());
	after(() => cluster.close());

	it("loses nothing and performs nothing twice", async () => {
		// n1 dies right after n2 committed its first shipment and before n1 deleted those rows.
		const n1 = cluster.node("n1", { KEYHIVE_FAILPOINT: "ship.after-send", KEYHIVE_SHIP_BATCH: "200" });
		n1.start();
		await waitFor(async () => (await callAction(cluster.observer, "topology.state", {}, { nodeID: "n1" })).state === "assembling", {
			timeoutMs: 30_000,
			message: "n1 assembling",
		});
		const published = await appendThrough(cluster.observer, "n1", "handoff", 4000, 400);
		cluster.node("n2").start();
		await waitFor(() => !n1.running, { timeoutMs: 30_000, message: "n1 to die at the failpoint" });
		const restarted = cluster.node("n1");
		restarted.start();
		await cluster.ready(["n1", "n2"]);
		await waitFor(() => cluster.results.distinctIds() >= 4000, { timeoutMs: 60_000, message: "4000 results" });
		const verdict = verify(published, cluster.results.results);
		assert.ok(isClean(verdict), `${summary(verdict)}\n${cluster.logs()}`);
		const n2 = await callAction(cluster.observer, "store.stats", {}, { nodeID: "n2" });
		assert.equal(n2.pending, 0);
	});
});

describe("the transporter going away and coming back", () => {
	let nats: NatsServer;
	let cluster: TestCluster;
	before(async () => {
		nats = new NatsServer(await freePort(), tempDir("nats").dir);
		await nats.start();
		// A majority of two: a node that loses sight of the other must stop, or both would own every key.
		cluster = new TestCluster({ KEYHIVE_CONSENSUS: "2" }, nats.url());
		await cluster.open();
	});
	after(async () => {
		await cluster.close();
		await nats.stop();
	});

	it("stops performing while NATS is down, loses nothing, and carries on once it is back", async () => {
		const [t1, t2] = ["t1", "t2"].map((id) => cluster.node(id));
		t1.start();
		t2.start();
		await cluster.ready(["t1", "t2"]);
		const producer = cluster.producer();
		await producer.start();
		producer.startSteady(20, 100, 100);
		try {
			await sleep(2000);
			const killedAt = Date.now();
			await nats.stop("SIGKILL");
			await sleep(12_000);
			const restartedAt = Date.now();
			await nats.start();
			await cluster.ready(["t1", "t2"], 60_000);
			await sleep(2000);
			await producer.stopSteady();
			const published = producer.published.length;
			await waitFor(() => cluster.results.distinctIds() >= published, { timeoutMs: 60_000, message: `${published} results` });
			const verdict = verify(producer.published, cluster.results.results);
			assert.ok(isClean(verdict), `${summary(verdict)}\n${cluster.logs()}`);
			const log = parsePerformLog(fs.readFileSync(cluster.performLog, "utf8"));
			// Heartbeats time out within 2 × 2 s: from then until NATS is back, neither node may perform anything.
			const quiet = log.filter((r) => r.start > killedAt + 6000 && r.start < restartedAt && r.messages > 0);
			assert.deepEqual(quiet, [], "no perform while each node saw only itself");
			assert.ok(
				log.some((r) => r.start > restartedAt),
				"performing again after NATS came back",
			);
			assert.deepEqual(findOverlaps(log), [], "no key on two nodes at once");
		} finally {
			await producer.close();
		}
	});
});
