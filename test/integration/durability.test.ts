/**
 * Keys survive the loss, stall and replacement of nodes: real node processes on
 * a 3-server NATS cluster of the test's own (JetStream, 3 replicas) and the real
 * RabbitMQ, under steady load. In order, on one cluster: a node frozen past the
 * heartbeat timeout and resumed, a node killed with its data dir deleted and
 * never restarted, a NATS server killed, and every node killed and replaced by
 * nodes with new ids and empty data dirs. Every published message must come
 * out exactly once with the demo counter of its per-key position (no state reset,
 * no reordering, no exemption for any key), and no key performed on two nodes at once.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { FENCED_EXIT_CODE } from "../../services/keyhive";
import { NodeProcess, TestCluster } from "../support/cluster";
import { freePort, uniqueName } from "../support/env";
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

	it("loses nothing, resets no actor, reorders nothing and performs nothing twice through a stall, a lost disk, a lost NATS server and a full replacement", async () => {
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

			// A lost disk: n2 killed, its data dir gone, never back.
			await n2.kill();
			n2.deleteData();
			await cluster.ready(["n1", "n3"]);
			await sleep(3000);

			// One NATS server of three killed: the transporter and JetStream go on with the other two.
			await nats.stop(1, "SIGKILL");
			await sleep(4000);
			await cluster.ready(["n1", "n3"], 60_000);
			await nats.start(1);

			// Every node killed; three new ones with new ids and empty data dirs take over everything.
			await Promise.all([n1.kill(), n3.kill()]);
			if (!process.env.KEEP) n1.deleteData();
			if (!process.env.KEEP) n3.deleteData();
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
