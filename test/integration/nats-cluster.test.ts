/**
 * The 3-server NATS cluster the tests (and docker-compose.yml) use for JetStream:
 * a stream with 3 replicas keeps taking writes when the server leading it is
 * killed (once the other two have elected a new leader), and the killed server
 * catches up when it comes back. A Moleculer broker connects with the comma
 * TRANSPORTER through natsOptions.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { ServiceBroker } from "moleculer";
import { connect, type JetStreamClient, type JetStreamManager, type NatsConnection, StorageType } from "nats";
import { readConfig } from "../../lib/config";
import { natsOptions } from "../../lib/nats";
import { freePort, uniqueName } from "../support/env";
import { NatsCluster } from "../support/nats-cluster";
import { waitFor } from "../support/wait";

describe("a 3-server NATS cluster with JetStream", () => {
	const stream = uniqueName("KH_CLUSTER_TEST").replace(/-/g, "_");
	const subject = `${stream}.journal`;
	let cluster: NatsCluster;
	let nc: NatsConnection | undefined;
	let jsm: JetStreamManager;
	let js: JetStreamClient;

	before(async () => {
		const ports = [await freePort(), await freePort(), await freePort()];
		const clusterPorts = [await freePort(), await freePort(), await freePort()];
		cluster = new NatsCluster(ports, clusterPorts);
		await cluster.start();
	});

	after(async () => {
		await nc?.close().catch(() => {});
		await cluster?.cleanup();
	});

	/** Publishes with a message id (a retry after a lost ack is dropped by JetStream), retrying until acked. */
	async function publish(n: number, timeoutMs = 5000): Promise<number> {
		const ack = await waitFor(() => js.publish(subject, new TextEncoder().encode(`m${n}`), { msgID: `m${n}`, timeout: 1000 }), {
			timeoutMs,
			intervalMs: 200,
			message: `message ${n} acked by the stream`,
			detail: () => cluster.logs().slice(-4000),
		});
		return ack.seq;
	}

	it("a Moleculer broker connects with the comma-separated TRANSPORTER", async () => {
		const transporter = readConfig({ TRANSPORTER: cluster.url() }).transporter!;
		assert.deepEqual(
			natsOptions(transporter).servers,
			cluster.ports.map((p) => `127.0.0.1:${p}`),
		);
		const broker = new ServiceBroker({
			nodeID: uniqueName("nats-cluster"),
			namespace: uniqueName("nats-cluster"),
			transporter: { type: "NATS", options: natsOptions(transporter) },
			logger: false,
		});
		await broker.start();
		try {
			assert.equal(broker.transit?.connected, true);
		} finally {
			await broker.stop();
		}
	});

	it("keeps a 3-replica stream writable while its leader's server is killed, and the server catches up", async () => {
		nc = await connect({ ...natsOptions(cluster.url()), reconnectTimeWait: 200, maxReconnectAttempts: -1 });
		jsm = await nc.jetstreamManager();
		js = nc.jetstream();
		// The meta leader answers account info before every peer is current: creating an R3 stream may need a retry.
		const created = await waitFor(() => jsm.streams.add({ name: stream, subjects: [`${stream}.*`], num_replicas: 3, storage: StorageType.File }), {
			timeoutMs: 10_000,
			intervalMs: 250,
			message: `stream ${stream} with 3 replicas`,
		});
		assert.equal(created.config.num_replicas, 3);
		for (let n = 1; n <= 10; n++) assert.equal(await publish(n), n);

		const info = await waitFor(
			async () => {
				const i = await jsm.streams.info(stream);
				return i.cluster?.leader && (i.cluster.replicas ?? []).filter((r) => r.current).length === 2 ? i : null;
			},
			{ timeoutMs: 10_000, intervalMs: 200, message: "a stream leader and two current replicas" },
		);
		const leader = info.cluster!.leader!;
		const killed = cluster.servers.findIndex((s) => `nats-${s.port}` === leader);
		assert.ok(killed >= 0, `the leader ${leader} is one of ours`);
		await cluster.stop(killed, "SIGKILL");

		// The other two elect a new leader (a few seconds); the client fails over if it was on the killed server.
		assert.equal(await publish(11, 20_000), 11);
		for (let n = 12; n <= 15; n++) assert.equal(await publish(n), n);
		const during = await jsm.streams.info(stream);
		assert.notEqual(during.cluster?.leader, leader, "a new leader");
		assert.equal(during.state.messages, 15);

		await cluster.start(killed);
		await waitFor(
			async () => {
				const i = await jsm.streams.info(stream);
				const back = (i.cluster?.replicas ?? []).find((r) => r.name === leader);
				return back?.current && !back.offline ? i : null;
			},
			{ timeoutMs: 15_000, intervalMs: 250, message: `${leader} current again` },
		);
		assert.equal(await publish(16), 16);
		await jsm.streams.delete(stream);
	});
});
