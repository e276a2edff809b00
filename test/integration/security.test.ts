/**
 * The cluster's trust boundary is the transporter: a node that NATS lets in is
 * trusted. Here a NATS server of the test's own requires a user and password:
 * two nodes with the right ones form a cluster; a node with a wrong password
 * never joins it and should stop at start with one clear line; no log holds a
 * password (NATS or RabbitMQ).
 */
import assert from "node:assert/strict";
import { randomBytes } from "crypto";
import * as fs from "fs";
import { after, before, describe, it } from "node:test";
import type { ServiceBroker } from "moleculer";
import { callAction, type MembersReply } from "../../lib/contracts";
import { NodeProcess, observer as observe, waitForReady } from "../support/cluster";
import { freePort, uniqueName } from "../support/env";
import { NatsServer, type NatsAuth } from "../support/nats-server";
import { tempDir } from "../support/tmp";
import { sleep, waitFor } from "../support/wait";

const NATS_USER = "keyhive";

describe("a cluster behind NATS credentials", () => {
	const name = uniqueName("security");
	const dir = tempDir(name).dir;
	const password = randomBytes(16).toString("hex");
	const wrongPassword = randomBytes(16).toString("hex");
	// RabbitMQ refuses this one: the nodes must say so without printing it (and no queue is made to clean up).
	const amqpPassword = randomBytes(16).toString("hex");
	const secrets = { "the NATS password": password, "the wrong NATS password": wrongPassword, "the RabbitMQ password": amqpPassword };
	let nats: NatsServer;
	let observer: ServiceBroker | undefined;
	const nodes: NodeProcess[] = [];
	let bad: NodeProcess;
	let badStartedAt = 0;

	function node(nodeID: string, natsPassword: string): NodeProcess {
		const child = new NodeProcess({
			nodeID,
			dir,
			env: {
				NAMESPACE: name,
				TRANSPORTER: nats.url(NATS_USER, natsPassword),
				AMQP_URL: `amqp://guest:${amqpPassword}@127.0.0.1:5672`,
				KEYHIVE_QUEUE: `${name}.inbox`,
				KEYHIVE_RESULTS_QUEUE: `${name}.processed`,
				KEYHIVE_ACTORS: "200",
			},
		});
		nodes.push(child);
		return child;
	}

	function logs(): string {
		return nodes.map((n) => `--- ${n.nodeID}\n${n.log().split("\n").slice(-25).join("\n")}`).join("\n");
	}

	async function membersOn(nodeID: string): Promise<MembersReply> {
		return callAction(observer!, "topology.members", {}, { nodeID, timeout: 2000 });
	}

	before(async () => {
		nats = new NatsServer(await freePort(), dir, { user: NATS_USER, password });
		await nats.start();
	});

	after(async () => {
		await Promise.all(nodes.map((n) => (n === bad ? n.kill() : n.stop(20_000))));
		await observer?.stop();
		await nats?.stop();
		fs.rmSync(dir, { recursive: true, force: true });
	});

	it("two nodes with the right password form a 2-member cluster", async () => {
		const good = [node("s1", password), node("s2", password)];
		for (const n of good) n.start();
		observer = await observe(name, { url: nats.url(NATS_USER, password) });
		await waitForReady(observer, ["s1", "s2"], ["s1", "s2"], 30_000).catch((err) => {
			throw new Error(`${(err as Error).message}\n${logs()}`);
		});
		for (const id of ["s1", "s2"]) assert.deepEqual((await membersOn(id)).members, ["s1", "s2"]);
	});

	it("a node with a wrong password never joins: the cluster stays at 2 members", async () => {
		bad = node("intruder", wrongPassword);
		badStartedAt = Date.now();
		bad.start();
		// Long enough for a start, Moleculer's first reconnect (5 s) and a discovery round.
		const until = Date.now() + 8000;
		while (Date.now() < until) {
			for (const id of ["s1", "s2"]) {
				const reply = await membersOn(id);
				assert.deepEqual(reply.members, ["s1", "s2"], `members on ${id}`);
				assert.ok(!reply.participants.includes("intruder"), `participants on ${id}: ${reply.participants.join(", ")}`);
			}
			const seen = (observer!.registry.getNodeList({ onlyAvailable: false, withServices: false }) as { id: string }[]).map((n) => n.id);
			assert.ok(!seen.includes("intruder"), `the observer never hears of the intruder: ${seen.join(", ")}`);
			await sleep(500);
		}
		assert.match(bad.log(), /Authorization Violation/i, `NATS refused it:\n${bad.log()}`);
	});

	it("a node with a wrong password stops at start with one clear line and a non-zero exit", async () => {
		await waitFor(() => !bad.running, { timeoutMs: Math.max(1000, badStartedAt + 15_000 - Date.now()), message: "the intruder exits by itself" }).catch(
			(err) => {
				throw new Error(`${(err as Error).message}\n--- intruder\n${bad.log()}`);
			},
		);
		const code = await bad.stop();
		assert.notEqual(code, 0, "a refused node exits non-zero");
		assert.notEqual(code, null);
		const log = bad.log();
		assert.match(log, /TRANSPORTER/, "the message names the variable to fix");
		assert.match(log, /credentials|password|user|token/i, "and says what is wrong with it");
		assert.doesNotMatch(log, /^\s+at .+:\d+:\d+\)?$/m, "one line, no stack trace");
		assert.doesNotMatch(log, /Reconnecting/, "a refused password is not retried");
	});

	it("no node's log holds a password", async () => {
		assert.ok(nodes.length === 3);
		for (const n of nodes) {
			const log = n.log();
			assert.ok(log.length > 0, `${n.nodeID} logged something`);
			for (const [what, secret] of Object.entries(secrets)) assert.ok(!log.includes(secret), `${n.nodeID}'s log holds ${what}`);
		}
		// The good nodes did try RabbitMQ with its password, were refused, and said so with the URL redacted.
		assert.match(nodes[0].log(), /RabbitMQ .*amqp:\/\/guest:\*\*\*@127\.0\.0\.1:5672.*ACCESS.REFUSED/, `s1 reports RabbitMQ's refusal:\n${nodes[0].log()}`);
	});
});

/**
 * The forms of TRANSPORTER the README documents: a password with characters a
 * URL must percent-encode, a token, and tls:// (which must never fall back to
 * plain text). Each node runs against a nats-server of its own.
 */
describe("credentials and TLS in TRANSPORTER", () => {
	const name = uniqueName("transporter");
	const dir = tempDir(name).dir;
	// Base64-like: '/', '+' and '=' must be percent-encoded in a URL, and '@' and ':' too.
	const specialPassword = `p@ss/w:rd+${randomBytes(6).toString("base64")}=`;
	const token = randomBytes(16).toString("hex");
	const tlsPassword = randomBytes(16).toString("hex");
	const servers: NatsServer[] = [];
	const nodes = new Map<string, NodeProcess>();

	function node(nodeID: string, transporter: string): NodeProcess {
		const child = new NodeProcess({
			nodeID,
			dir,
			env: {
				NAMESPACE: `${name}-${nodeID}`,
				TRANSPORTER: transporter,
				KEYHIVE_QUEUE: `${name}.inbox`,
				KEYHIVE_RESULTS_QUEUE: `${name}.processed`,
				// Nothing listens there: no RabbitMQ queue is made, none to clean up.
				AMQP_URL: "amqp://guest:guest@127.0.0.1:1",
				KEYHIVE_ACTORS: "10",
			},
		});
		nodes.set(nodeID, child);
		return child;
	}

	async function server(auth: NatsAuth): Promise<NatsServer> {
		const s = new NatsServer(await freePort(), dir, auth);
		servers.push(s);
		await s.start();
		return s;
	}

	const connected = (n: NodeProcess) => /NATS client is connected/.test(n.log());
	let startedAt = 0;
	/** Until the node connected, was refused, or is gone; at most 12 s after the nodes started. */
	const settled = (n: NodeProcess) =>
		waitFor(() => connected(n) || !n.running || /NATS error/.test(n.log()), {
			timeoutMs: Math.max(100, startedAt + 12_000 - Date.now()),
			message: `${n.nodeID} connects or fails`,
		}).catch(() => undefined);

	before(async () => {
		const special = await server({ user: NATS_USER, password: specialPassword });
		const tokenServer = await server({ token });
		const plain = await server({ user: NATS_USER, password: tlsPassword });
		// All three start at once; each test below waits for its own.
		startedAt = Date.now();
		node("special", special.url(NATS_USER, specialPassword)).start();
		node("token", `nats://${token}@127.0.0.1:${tokenServer.port}`).start();
		node("tls", plain.url(NATS_USER, tlsPassword, "tls")).start();
	});

	after(async () => {
		await Promise.all([...nodes.values()].map((n) => n.kill()));
		await Promise.all(servers.map((s) => s.stop()));
		fs.rmSync(dir, { recursive: true, force: true });
	});

	it("a percent-encoded password is decoded: the node connects", async () => {
		const n = nodes.get("special")!;
		await settled(n);
		assert.ok(connected(n), `connected with a password that needs encoding:\n${n.log()}`);
		assert.ok(!n.log().includes(encodeURIComponent(specialPassword)) && !n.log().includes(specialPassword), "and never logs it");
	});

	it("token@ is sent as a token: the node connects", async () => {
		const n = nodes.get("token")!;
		await settled(n);
		assert.ok(connected(n), `connected with a token:\n${n.log()}`);
		assert.ok(!n.log().includes(token), "and never logs it");
	});

	it("tls:// never falls back to plain text, and a failure does not print the password", async () => {
		const n = nodes.get("tls")!;
		await settled(n);
		const log = n.log();
		assert.ok(!log.includes(tlsPassword), `the log holds the password:\n${log}`);
		assert.ok(!connected(n), `connected in plain text to a server without TLS:\n${log}`);
		assert.doesNotMatch(log, /Invalid transporter type/);
	});
});
