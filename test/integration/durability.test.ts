/**
 * Keys survive the loss, stall and replacement of nodes: real node processes on
 * a 3-server NATS cluster of the test's own (JetStream, 3 replicas) and the real
 * RabbitMQ, under steady load. In order, on one cluster: a node frozen past the
 * heartbeat timeout and resumed, the RabbitMQ active consumer killed with its
 * data dir deleted and never restarted, a NATS server killed, and every node killed and replaced by
 * nodes with new ids and empty data dirs. Every published message must come
 * out exactly once with the demo counter of its per-key position (no state reset,
 * no reordering, no exemption for any key), and no key performed on two nodes at once.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { callAction } from "../../lib/contracts";
import { FENCED_EXIT_CODE } from "../../services/keyhive";
import { NodeProcess, TestCluster } from "../support/cluster";
import { freePort, NATS_URL, uniqueName } from "../support/env";
import { NatsCluster } from "../support/nats-cluster";
import { NatsServer } from "../support/nats-server";
import { tempDir } from "../support/tmp";
import { sleep, waitFor } from "../support/wait";
import { isClean, summary, trace, verify } from "../support/verify";

describe("durable key state", () => {
	let nats: NatsCluster;
	let cluster: TestCluster;

	before(async () => {
		const ports = [await freePort(), await freePort(), await freePort()];
		const routes = [await freePort(), await freePort(), await freePort()];
		nats = new NatsCluster(ports, routes);
		await nats.start();
		cluster = new TestCluster({ KEYHIVE_REPLICAS: "3", KEYHIVE_CONSENSUS: "2" }, nats.url());
		await cluster.open();
	});
	after(async () => {
		await cluster?.close();
		await nats?.stopAll();
		await nats?.cleanup();
	});

	it("loses nothing, resets no actor, reorders nothing and performs nothing twice through a stall, a lost disk of the active consumer, a lost NATS server and a full replacement", async () => {
		const [n1, n2, n3] = ["n1", "n2", "n3"].map((id) => cluster.node(id));
		for (const n of [n1, n2, n3]) n.start();
		await cluster.ready(["n1", "n2", "n3"]);
		const producer = cluster.producer();
		await producer.start();
		producer.startSteady(30, 100, 300);
		try {
			await sleep(3000);

			// A stall past the heartbeat timeout: the others take n3's keys over; n3 resumes fenced and exits.
			n3.freeze();
			await cluster.ready(["n1", "n2"]);
			await sleep(2000);
			n3.thaw();
			assert.equal(await n3.exited(), FENCED_EXIT_CODE, `n3 exits as fenced\n${n3.log().split("\n").slice(-20).join("\n")}`);
			n3.start();
			await cluster.ready(["n1", "n2", "n3"]);
			await sleep(3000);

			// A lost disk, under load: the RabbitMQ active consumer killed with deliveries in flight, its data dir gone, never back.
			const lost = await activeConsumer(cluster, [n1, n2, n3]);
			const left = [n1, n2, n3].filter((n) => n !== lost);
			await lost.kill();
			lost.deleteData();
			await cluster.ready(left.map((n) => n.nodeID));
			await sleep(3000);

			// One NATS server of three killed: the transporter and JetStream go on with the other two.
			await nats.stop(1, "SIGKILL");
			await sleep(4000);
			await cluster.ready(
				left.map((n) => n.nodeID),
				60_000,
			);
			await nats.start(1);

			// Every node killed; three new ones with new ids and empty data dirs take over everything.
			await Promise.all(left.map((n) => n.kill()));
			if (!process.env.KEEP) for (const n of left) n.deleteData();
			const replacements = ["r1", "r2", "r3"].map((id) => cluster.node(id));
			for (const r of replacements) r.start();
			await cluster.ready(["r1", "r2", "r3"], 60_000);
			await sleep(3000);
			await producer.stopSteady();

			const published = producer.published.length;
			await waitFor(() => cluster.results.distinctIds() >= published, { timeoutMs: 90_000, message: `${published} results` }).catch((err) => {
				throw new Error(`${(err as Error).message}\n${summary(verify(producer.published, cluster.results.results))}\n${cluster.logs()}`);
			});
			await sleep(1000);
			const verdict = verify(producer.published, cluster.results.results);
			const traces = [...verdict.badCounts, ...verdict.outOfOrder].slice(0, 3).map((k) => `${k}: ${trace(producer.published, cluster.results.results, k)}`);
			assert.ok(isClean(verdict), `${summary(verdict)}\n${traces.join("\n")}\n${cluster.logs()}`);
			assert.ok(published > 3000, `a real load flowed (${published} messages)`);
			const performs = cluster.performOverlaps();
			assert.deepEqual(performs.overlaps, [], "no key was performed on two nodes at once");
		} finally {
			await producer.close();
		}
	});
});

/** The node whose inbox consumer is taking deliveries now (RabbitMQ's single active consumer). */
async function activeConsumer(cluster: TestCluster, nodes: NodeProcess[]): Promise<NodeProcess> {
	const ingested = async () => Promise.all(nodes.map(async (n) => (await callAction(cluster.observer, "ingest.status", {}, { nodeID: n.nodeID })).ingested));
	const before = await ingested();
	await sleep(1000);
	const now = await ingested();
	const active = nodes.filter((_, i) => now[i] > before[i]);
	assert.equal(active.length, 1, `one node ingests (ingested went from ${before.join(", ")} to ${now.join(", ")})`);
	return active[0];
}

describe("the RabbitMQ active consumer killed between its commit and its ack", () => {
	it("leaves its batch both in its journal and in the queue: the heir takes the journal over, drops the redelivered copies and performs each message once, in order", async () => {
		const cluster = new TestCluster({ KEYHIVE_ACTORS: "100" }, NATS_URL);
		await cluster.open();
		const producer = cluster.producer();
		try {
			// The victim consumes first, so it is the active consumer; it dies (SIGKILL) right after its first batch is
			// durable (a full batch of 500, so keys of both nodes), before any of its performs (2 s each) could commit.
			const victim = cluster.node("victim", { KEYHIVE_FAILPOINT: "ingest.after-commit", KEYHIVE_DEMO_WORK_MS: "2000", KEYHIVE_BATCH_MS: "1000" });
			victim.start();
			await cluster.ready(["victim"]);
			const heir = cluster.node("heir");
			heir.start();
			await cluster.ready(["heir", "victim"]);
			await producer.start();
			await producer.publish(2000, 100);
			await waitFor(() => !victim.running, { timeoutMs: 30_000, message: "the victim to hit the failpoint" });
			victim.deleteData();
			await cluster.ready(["heir"]);

			await waitFor(() => cluster.results.distinctIds() >= 2000, { timeoutMs: 60_000, message: "2,000 results" }).catch((err) => {
				throw new Error(`${(err as Error).message}\n${cluster.logs()}`);
			});
			await sleep(1000);
			const took = /took over the journal of lost instance \S+ .*: \d+ records(?: from a snapshot)?, (\d+) pending rows/.exec(heir.log());
			assert.ok(took && Number(took[1]) > 0, `the heir took the victim's committed, unacked rows over\n${heir.log()}`);
			const verdict = verify(producer.published, cluster.results.results);
			assert.ok(isClean(verdict), summary(verdict));
			assert.equal(verdict.republished, 0, "no result published twice");
		} finally {
			await producer.close();
			await cluster.close();
		}
	});
});

describe("a node whose NATS has no JetStream", () => {
	it("exits at start, non-zero, naming the cause on one line, and performs nothing", async () => {
		const dir = tempDir("keyhive-nojs-node-");
		const server = new NatsServer(await freePort(), dir.dir, undefined, { jetstream: false });
		await server.start();
		try {
			const node = new NodeProcess({ nodeID: "nojs", dir: dir.dir, env: { TRANSPORTER: server.url(), NAMESPACE: uniqueName("nojs"), KEYHIVE_ACTORS: "10" } });
			node.start();
			const code = await node.exited();
			assert.notEqual(code, 0);
			const errors = node
				.log()
				.split("\n")
				.filter((line) => /journal cannot open/.test(line));
			assert.ok(errors.length > 0, node.log());
			for (const line of errors) assert.match(line, /NATS at 127\.0\.0\.1:\d+ has no JetStream.*start nats-server with -js/);
			assert.doesNotMatch(node.log(), /^\s+at /m, "no stack trace");
		} finally {
			await server.stop();
			dir.cleanup();
		}
	});
});
