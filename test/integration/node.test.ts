/**
 * One keyhive node with all its services, on the real RabbitMQ and SQLite:
 * every message performed once and in order per key, across a stop and a
 * restart on the same data dir, a SIGKILL between commit and ack, and broker
 * connections closed from outside.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import type { ServiceBroker } from "moleculer";
import { callAction } from "../../lib/contracts";
import { Store } from "../../lib/store/store";
import { closeConnectionFromOutside } from "../support/amqp";
import { startNode } from "../support/broker";
import { groupAlive, NodeProcess } from "../support/cluster";
import { AMQP_URL, NATS_URL, uniqueName } from "../support/env";
import { deleteJournalStream } from "../support/journal-stream";
import { tempDir } from "../support/tmp";
import { waitFor } from "../support/wait";
import { deleteQueues, Producer, ResultsCollector } from "../support/traffic";
import { isClean, summary, verify, type PublishedMessage } from "../support/verify";

function queueEnv(name: string) {
	return { KEYHIVE_QUEUE: `${name}.inbox`, KEYHIVE_RESULTS_QUEUE: `${name}.processed`, AMQP_URL };
}

/** The results of env's queues, collected while the describe block it is called in runs; the queues are deleted after it. */
function collectResults(env: { KEYHIVE_QUEUE: string; KEYHIVE_RESULTS_QUEUE: string }): ResultsCollector {
	const results = new ResultsCollector(AMQP_URL, env.KEYHIVE_RESULTS_QUEUE);
	before(() => results.start());
	after(async () => {
		await results.close();
		await deleteQueues(AMQP_URL, env.KEYHIVE_QUEUE, env.KEYHIVE_RESULTS_QUEUE);
	});
	return results;
}

describe("a single node", () => {
	const name = uniqueName("node");
	const env = { ...queueEnv(name), KEYHIVE_DATA_DIR: tempDir(name).dir, KEYHIVE_ACTORS: "2000" };
	const results = collectResults(env);

	it("performs 20,000 messages over 2,000 keys once each, in order, across a stop and restart mid-stream", async () => {
		const published: PublishedMessage[] = [];
		const batch = (from: number, count: number) =>
			Array.from({ length: count }, (_, i) => {
				const n = from + i;
				const message = { id: `m-${n}`, key: `key_${(n % 2000) + 1}`, payload: JSON.stringify({ n }) };
				published.push({ id: message.id, key: message.key });
				return message;
			});
		let broker: ServiceBroker = await startNode("single", env);
		for (let from = 0; from < 10_000; from += 500) await broker.call("store.append", { messages: batch(from, 500) });
		// Stop while most of these are still pending, then start again on the same file.
		await broker.stop();
		broker = await startNode("single", env);
		for (let from = 10_000; from < 20_000; from += 500) await broker.call("store.append", { messages: batch(from, 500) });
		await waitFor(() => results.distinctIds() >= 20_000, { timeoutMs: 60_000, message: "20,000 results" });
		const stats = await callAction(broker, "worker.stats");
		await broker.stop();
		const verdict = verify(published, results.results);
		assert.ok(isClean(verdict), summary(verdict));
		assert.equal(stats.pending, 0);
	});
});

describe("a lone node given a transporter", () => {
	const name = uniqueName("adopt");
	const namespace = uniqueName("adopt");
	const dir = tempDir(name);
	const env = { ...queueEnv(name), KEYHIVE_DATA_DIR: dir.dir, KEYHIVE_ACTORS: "20" };
	const results = collectResults(env);
	after(async () => {
		await deleteJournalStream(NATS_URL, namespace);
		dir.cleanup();
	});

	it("adopts what its file held into JetStream: every message pending at the switch performed once, in order, with the counters it had", async () => {
		const published: PublishedMessage[] = [];
		const messages = Array.from({ length: 2000 }, (_, n) => {
			const message = { id: `a-${n}`, key: `key_${(n % 20) + 1}`, payload: JSON.stringify({ n }) };
			published.push({ id: message.id, key: message.key });
			return message;
		});
		// One message per perform of 100 ms: most are still pending in the file when the node stops.
		let broker = await startNode("adopter", { ...env, KEYHIVE_DEMO_WORK_MS: "100", KEYHIVE_MAX_BATCH: "1" });
		for (let from = 0; from < 2000; from += 500) await broker.call("store.append", { messages: messages.slice(from, from + 500) });
		await waitFor(() => results.distinctIds() > 0, { timeoutMs: 30_000, message: "a first result" });
		await broker.stop();
		const file = new Store(path.join(dir.dir, "adopter.sqlite"));
		const pendingAtSwitch = file.pendingCount;
		file.close();
		assert.ok(pendingAtSwitch > 1000, `${pendingAtSwitch} messages pending when the node stopped`);

		broker = await startNode("adopter", { ...env, TRANSPORTER: NATS_URL, NAMESPACE: namespace, KEYHIVE_CONSENSUS: "1" });
		try {
			await waitFor(() => results.distinctIds() >= 2000, { timeoutMs: 60_000, message: "2,000 results" });
		} finally {
			await broker.stop();
		}
		const verdict = verify(published, results.results);
		assert.ok(isClean(verdict), summary(verdict));
	});
});

describe("a node fed by RabbitMQ", () => {
	it("survives its broker connection closed from outside twice: 50,000 messages, each performed once, in order per key", async () => {
		const name = uniqueName("reconnect");
		const env = { ...queueEnv(name), KEYHIVE_DATA_DIR: tempDir(name).dir, KEYHIVE_ACTORS: "1000" };
		const results = new ResultsCollector(AMQP_URL, env.KEYHIVE_RESULTS_QUEUE);
		await results.start();
		const broker = await startNode("reconnect", env);
		const producer = new Producer(AMQP_URL, env.KEYHIVE_QUEUE, name);
		try {
			await producer.start();
			const publishing = (async () => {
				for (let i = 0; i < 50; i++) await producer.publish(1000, 1000);
			})();
			for (const threshold of [10_000, 30_000]) {
				await waitFor(() => results.distinctIds() >= threshold, { timeoutMs: 60_000, message: `${threshold} results` });
				assert.ok((await closeConnectionFromOutside("keyhive reconnect")) >= 1, "closed the node's connection");
			}
			await publishing;
			await waitFor(() => results.distinctIds() >= 50_000, { timeoutMs: 90_000, message: "50,000 results" });
			const verdict = verify(producer.published, results.results);
			assert.ok(isClean(verdict), summary(verdict));
		} finally {
			await producer.close();
			await broker.stop();
			await results.close();
			await deleteQueues(AMQP_URL, env.KEYHIVE_QUEUE, env.KEYHIVE_RESULTS_QUEUE);
		}
	});

	it("killed after committing a batch but before acking it, processes nothing twice after restart", async () => {
		const name = uniqueName("failpoint");
		const dir = tempDir(name).dir;
		const env = { ...queueEnv(name), KEYHIVE_ACTORS: "100", TRANSPORTER: "", NAMESPACE: name };
		const results = new ResultsCollector(AMQP_URL, env.KEYHIVE_RESULTS_QUEUE);
		await results.start();
		const crashing = new NodeProcess({ nodeID: "victim", dir, env: { ...env, KEYHIVE_FAILPOINT: "ingest.after-commit" } });
		const producer = new Producer(AMQP_URL, env.KEYHIVE_QUEUE, name);
		try {
			crashing.start();
			await producer.start();
			await producer.publish(2000, 100);
			// The node dies at its first commit: those rows are on disk, their deliveries unacked.
			await waitFor(() => !crashing.running, { timeoutMs: 60_000, message: "the node to hit the failpoint and die" });
			const onDisk = Store.open(crashing.dataDir, "victim");
			const committed = onDisk.pendingCount;
			onDisk.close();
			assert.ok(committed > 0, "the batch was committed before the crash");
			assert.equal(results.distinctIds(), 0, "nothing was performed before the crash");
			const restarted = new NodeProcess({ nodeID: "victim", dir, env });
			restarted.start();
			await waitFor(() => results.distinctIds() >= 2000, { timeoutMs: 60_000, message: "2,000 results after restart" });
			await restarted.stop();
			const verdict = verify(producer.published, results.results);
			assert.ok(isClean(verdict), summary(verdict));
			assert.equal(verdict.republished, 0);
		} finally {
			await producer.close();
			await crashing.kill();
			await results.close();
			await deleteQueues(AMQP_URL, env.KEYHIVE_QUEUE, env.KEYHIVE_RESULTS_QUEUE);
		}
	});
});

describe("ingest.publish with the key in the routing key", () => {
	it("does not publish to the queue (its routing key would become every message's key): the store takes them", async () => {
		const name = uniqueName("routing-key");
		const env = { ...queueEnv(name), KEYHIVE_DATA_DIR: tempDir(name).dir, KEYHIVE_ACTORS: "10", KEYHIVE_KEY_FROM: "routingKey" };
		const broker = await startNode("routing-key", env);
		try {
			await waitFor(async () => (await callAction(broker, "ingest.status")).consuming, { timeoutMs: 15_000, message: "ingest consuming" });
			const reply = await callAction(broker, "ingest.publish", { messages: [{ key: "key_3", payload: "x" }] });
			assert.equal(reply.via, "store");
			await waitFor(async () => (await callAction(broker, "worker.get", { id: "key_3" }))?.payload === 1, {
				timeoutMs: 10_000,
				message: "key_3 to count its message",
			});
		} finally {
			await broker.stop();
			await deleteQueues(AMQP_URL, env.KEYHIVE_QUEUE, env.KEYHIVE_RESULTS_QUEUE);
		}
	});
});

/** How a user leaves `npm start`: a REPL command, the end of its input, or a signal. */
type WayOut = { command: string } | { endOfInput: true } | { signal: NodeJS.Signals };

const ROOT = path.resolve(__dirname, "..", "..");

/**
 * Runs the REPL node of `npm start` with stdin piped, loads messages, leaves the given way, and
 * resolves with the node's exit code and everything it printed once its whole process group is gone.
 * For a signal the start script runs without npm: npm dies of the signal it forwards, so its own exit
 * status would hide the node's. The signal is sent again once the node is leaving, as Ctrl-C on
 * `npm start` in a terminal reaches the node twice (from the terminal, and forwarded by npm).
 */
async function runReplAndLeave(wayOut: WayOut): Promise<{ code: number | null; output: string }> {
	const name = uniqueName("repl-exit");
	const env = { ...queueEnv(name), KEYHIVE_DATA_DIR: tempDir(name).dir, KEYHIVE_ACTORS: "10000", TRANSPORTER: "", NAMESPACE: "" };
	const startScript = (JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")) as { scripts: { start: string } }).scripts.start;
	const [command, args] = "signal" in wayOut ? ["sh", ["-c", `exec ${startScript}`]] : ["npm", ["start"]];
	// Its own process group, as a terminal gives a foreground job.
	const child = spawn(command, args, { cwd: ROOT, detached: true, env: { ...process.env, ...env } });
	let output = "";
	child.stdout.on("data", (chunk) => (output += chunk));
	child.stderr.on("data", (chunk) => (output += chunk));
	const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
	try {
		child.stdin.write("load --messages 20000 --keys 2000\n");
		await waitFor(() => /published 20,000 messages/.test(output), { timeoutMs: 60_000, message: "the load to be published", detail: () => output });
		if ("command" in wayOut) child.stdin.end(`${wayOut.command}\n`);
		else if ("endOfInput" in wayOut) child.stdin.end();
		else {
			process.kill(-child.pid!, wayOut.signal);
			await waitFor(() => /→ stopping/.test(output), { timeoutMs: 10_000, message: "the node to start leaving", detail: () => output });
			process.kill(-child.pid!, wayOut.signal);
		}
		const code = await Promise.race([
			exited,
			new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`still running 60 s later:\n${output}`)), 60_000)),
		]);
		await waitFor(() => !groupAlive(child.pid!), { timeoutMs: 10_000, message: "the node process to be gone" });
		return { code, output };
	} finally {
		if (groupAlive(child.pid!)) process.kill(-child.pid!, "SIGKILL");
		await deleteQueues(AMQP_URL, env.KEYHIVE_QUEUE, env.KEYHIVE_RESULTS_QUEUE);
	}
}

describe("leaving the REPL of npm start", () => {
	const waysOut: [string, WayOut][] = [
		["the exit command", { command: "exit" }],
		["the quit command", { command: "quit" }],
		["the end of its input", { endOfInput: true }],
		["Ctrl-C (SIGINT to its process group)", { signal: "SIGINT" }],
		["SIGTERM", { signal: "SIGTERM" }],
	];
	for (const [how, wayOut] of waysOut) {
		it(`by ${how} stops the node once, cleanly, with exit code 0`, async () => {
			const { code, output } = await runReplAndLeave(wayOut);
			assert.equal(code, 0, output);
			assert.doesNotMatch(output, /\bERROR\b/, output);
			assert.equal(output.match(/ServiceBroker is stopped/g)?.length ?? 0, 1, `the broker stops once:\n${output}`);
			assert.equal(output.match(/Service 'ingest' stopped/g)?.length ?? 0, 1, `the ingest service stops once:\n${output}`);
		});
	}
});

describe("a node without a service its peers call", () => {
	it("fails at start with one line naming the missing store service", async () => {
		const name = uniqueName("no-store");
		const env = { ...queueEnv(name), KEYHIVE_DATA_DIR: tempDir(name).dir, KEYHIVE_ACTORS: "10" };
		const services = ["topology", "worker"].map((service) => path.resolve(__dirname, "..", "..", "services", `${service}.service.ts`));
		let broker: ServiceBroker | undefined;
		try {
			await assert.rejects(
				startNode("no-store", env, services, (made) => (broker = made)),
				(err: Error) => /^keyhive node no-store cannot start without the store service/.test(err.message) && !err.message.includes("\n"),
			);
		} finally {
			await broker?.stop();
		}
	});
});
