/**
 * The REPL commands (lib/repl) against a real in-process broker running the
 * real store, topology, worker and ingest services (SQLite in a temp dir,
 * RabbitMQ on 127.0.0.1:5672 with queues of its own, deleted at the end);
 * keyhive's command definitions; and the real moleculer-repl driven
 * through moleculer-runner, to check that `load` reaches both our load
 * generator and the built-in service loader.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { after, before, describe, it } from "node:test";
import { ServiceBroker, type BrokerOptions } from "moleculer";
import { readConfig } from "../../lib/config";
import { callAction, type IngestStatusReply, type MembersReply, type StoreStatsReply, type TopologyStateReply } from "../../lib/contracts";
import { deadLetterExchangeOf, deadLetterQueueOf } from "../../lib/ingest/consumer";
import { actorCommand } from "../../lib/repl/commands/actor";
import { clusterCommand } from "../../lib/repl/commands/cluster";
import { deadCommand } from "../../lib/repl/commands/dead";
import { loadCommand } from "../../lib/repl/commands/load";
import { publishCommand } from "../../lib/repl/commands/publish";
import { whoisCommand } from "../../lib/repl/commands/whois";
import type { Print } from "../../lib/repl/print";
import { keyhiveRepl } from "../../lib/repl/start";
import { keyhiveNode } from "../../services/keyhive";
import { deleteAll, openTestChannel } from "../support/amqp";
import { uniqueName } from "../support/env";
import { tempDir } from "../support/tmp";
import { waitFor } from "../support/wait";

const ROOT = path.resolve(__dirname, "../..");
const SERVICES = ["store", "topology", "worker", "ingest"].map((name) => path.join(ROOT, "services", `${name}.service.ts`));

/** A Print that keeps every line, and every redraw of a progress bar apart. */
function recorder() {
	const lines: string[] = [];
	const progress: string[] = [];
	const print: Print = Object.assign((line: string) => void lines.push(line), {
		progress(line: string, final: boolean) {
			progress.push(line);
			if (final) lines.push(line);
		},
	});
	return { print, lines, progress, text: () => lines.join("\n") };
}

/** Runs a command and returns what it printed. */
async function run(
	command: (broker: ServiceBroker, args: Record<string, unknown>, print: Print) => Promise<void>,
	broker: ServiceBroker,
	args: Record<string, unknown> = {},
) {
	const out = recorder();
	await command(broker, args, out.print);
	return out;
}

/** Queues of their own, so a test never touches a real deployment's keyhive.inbox. */
function amqpEnv(): Record<string, string> {
	return { KEYHIVE_QUEUE: uniqueName("repl-inbox"), KEYHIVE_RESULTS_QUEUE: uniqueName("repl-results") };
}

async function deleteQueues(env: Record<string, string>): Promise<void> {
	const helper = await openTestChannel();
	await deleteAll(helper.model, {
		queues: [env.KEYHIVE_QUEUE, deadLetterQueueOf(env.KEYHIVE_QUEUE), env.KEYHIVE_RESULTS_QUEUE],
		exchanges: [deadLetterExchangeOf(env.KEYHIVE_QUEUE)],
	});
	await helper.close();
}

describe("REPL command definitions", () => {
	it("takes over the built-in load, and describes every command and option", () => {
		const { commands: replCommands, loadCommandName: LOAD_COMMAND_NAME } = keyhiveRepl();
		assert.equal(LOAD_COMMAND_NAME, "load", "moleculer-repl's load module was not taken over; the load generator is load-messages");
		const names = replCommands.map((c) => c.command.split(" ")[0]);
		assert.deepEqual(names, ["publish", "load", "actor", "whois", "cluster", "dead"]);
		for (const c of replCommands) {
			assert.ok(c.description && c.description.length > 10, `${c.command} has a description`);
			for (const o of c.options ?? []) assert.ok(o.description && o.description.length > 10, `${c.command} ${o.option} has help text`);
		}
		const load = replCommands.find((c) => c.command.startsWith("load"))!;
		assert.deepEqual(
			load.options!.map((o) => o.option),
			["--messages <n>", "--keys <k>", "--batch <b>", "--wait <s>"],
		);
	});

	it("leaves moleculer-repl alone when moleculer.config.ts is imported, and takes over load only when a REPL starts", () => {
		// A process of its own: the takeover lasts for the process, and importing the config reads the environment.
		const probe = [
			'const load = require("moleculer-repl/src/commands/load.js");',
			"const builtin = load.register;",
			'require("./moleculer.config");',
			"const afterImport = load.register === builtin;",
			'require("./lib/repl/start").keyhiveRepl();',
			"console.log(JSON.stringify({ afterImport, afterRepl: load.register === builtin }));",
		].join("\n");
		const child = spawnSync(process.execPath, ["--import", "tsx", "-e", probe], { cwd: ROOT, env: { ...process.env, TRANSPORTER: "" }, encoding: "utf8" });
		assert.equal(child.status, 0, child.stderr);
		assert.deepEqual(JSON.parse(child.stdout), { afterImport: true, afterRepl: false });
	});
});

describe("REPL commands against a real broker", () => {
	let broker: ServiceBroker;
	let dataDir: string;
	const env = amqpEnv();

	before(async () => {
		dataDir = tempDir("keyhive-repl").dir;
		broker = new ServiceBroker({
			nodeID: "repl-test",
			logger: false,
			keyhive: readConfig({ KEYHIVE_DATA_DIR: dataDir, KEYHIVE_ACTORS: "100", ...env }),
		} as BrokerOptions);
		for (const file of SERVICES) broker.loadService(file);
		await broker.start();
		await waitFor(
			async () => {
				const state = await callAction(broker, "topology.state");
				const status = await callAction(broker, "ingest.status");
				return state.state === "ready" && status.connected && status.consuming;
			},
			{ message: "the node to be ready and consuming its RabbitMQ inbox", timeoutMs: 15_000 },
		);
	});

	after(async () => {
		await broker?.stop();
		await deleteQueues(env);
		fs.rmSync(dataDir, { recursive: true, force: true });
	});

	const processedTotal = async () => (await callAction(broker, "worker.stats")).processed;

	it("publish reaches the actor, and actor shows its count", async () => {
		const out = await run(publishCommand, broker, { key: "key_1", payload: "hello world" });
		assert.match(out.text(), /^published 1 message via rabbitmq \(key key_1, id repl-[0-9a-f-]+\)$/);
		await waitFor(async () => (await callAction(broker, "worker.get", { id: "key_1" }))?.payload === 1, {
			message: "key_1 to count the message",
			timeoutMs: 15_000,
		});

		const actor = await run(actorCommand, broker, { id: "key_1" });
		assert.match(actor.text(), /^payload\s+1$/m);
		assert.match(actor.text(), /^node\s+repl-test$/m);
		assert.match(actor.text(), /^pending\s+0$/m);
		assert.match(actor.text(), /^last perform\s+\S+ m?s ago$/m);

		assert.equal((await run(actorCommand, broker, { id: "no_such_actor" })).text(), "no actor no_such_actor");
	});

	it("load --messages 2000 --keys 50 publishes, shows progress, and waits until all are processed", async () => {
		const before = await processedTotal();
		const out = await run(loadCommand, broker, { options: { messages: "2000", keys: "50" } });
		const text = out.text();
		assert.match(text, /^load [0-9a-f]{8}: 2,000 messages over keys key_1\.\.key_50, 1,000 per call$/m);
		assert.match(text, /^publish  \[#{30}\]  2,000\/2,000  100\.0%  [\d,]+ msg\/s$/m);
		assert.match(text, /^published 2,000 messages in .+: [\d,]+ msg\/s \(via rabbitmq\)$/m);
		assert.match(text, /^process  \[#{30}\]  2,000\/2,000  100\.0%  [\d,]+ msg\/s$/m);
		assert.match(text, /^processed 2,000 of 2,000 in .+ since the first publish: [\d,]+ msg\/s$/m);
		assert.ok(
			out.progress.every((line) => !line.includes("\n")),
			"a progress bar stays on one line",
		);
		assert.ok((await processedTotal()) - before >= 2000);
		// key_1 gets messages 0, 50, …, 1950 (40 of them) on top of the one published above.
		const key1 = await callAction(broker, "worker.get", { id: "key_1" });
		assert.equal(key1?.payload, 41);
	});

	it("cluster shows the view, its state and a row for the node with the whole ring", async () => {
		const out = await run((b, a, p) => clusterCommand(b, a, p, 200), broker);
		const view = (await callAction(broker, "topology.members")).view;
		assert.equal(out.lines[0], `view ${view}  ·  1 member  ·  state ready`);
		assert.match(out.lines[1], /^node\s+state\s+actors\s+processed\s+pending\s+shipped\s+proc\/s\s+dead\s+ring$/);
		const row = out.lines.find((l) => l.startsWith("repl-test"));
		assert.ok(row, out.text());
		assert.match(row, /^repl-test \(\*\)\s+ready\s+100\s+2,00\d\s+0\s+0\s+\d+\s+0\s+100\.0%$/);
	});

	it("whois names the owner", async () => {
		const out = await run(whoisCommand, broker, { key: "key_7" });
		assert.match(out.text(), /^key\s+key_7$/m);
		assert.match(out.text(), /^owner\s+repl-test$/m);
		assert.match(out.text(), /^state\s+ready$/m);
	});

	it("dead lists dead letters of the store and RabbitMQ's dead-letter queue, and --requeue puts them back", async () => {
		// Store dead letters: rows still pending when their actor is deleted are dead-lettered with
		// reason "actor deleted". Appended and deleted in one turn, before the actor's perform can start.
		keyhiveNode(broker).store.append([
			{ id: "repl-dead-1", key: "key_9", payload: '{"poison":true}' },
			{ id: "repl-dead-2", key: "key_9", payload: "second" },
		]);
		assert.deepEqual(await broker.call("worker.del", { id: "key_9" }), { id: "key_9", deleted: true });
		// A RabbitMQ dead letter: a message without a key header.
		const helper = await openTestChannel();
		const confirm = await helper.model.createConfirmChannel();
		confirm.sendToQueue(env.KEYHIVE_QUEUE, Buffer.from("no key"), { messageId: "repl-bad-1" });
		await confirm.waitForConfirms();
		await helper.close();
		let status: unknown;
		await waitFor(async () => (status = await callAction(broker, "ingest.status")).deadQueueDepth === 1, {
			message: "the keyless message to be dead-lettered",
			timeoutMs: 15_000,
			detail: () => JSON.stringify(status),
		});

		const out = await run(deadCommand, broker);
		const text = out.text();
		assert.match(text, /^2 dead letters in the stores of 1 node$/m);
		assert.match(text, /^node\s+id\s+key\s+reason\s+attempts\s+died at\s+payload$/m);
		assert.match(text, /^repl-test\s+repl-dead-1\s+key_9\s+actor deleted\s+\d+\s+\d{4}-\d\d-\d\dT\S+Z\s+\{"poison":true\}$/m);
		assert.match(text, /^repl-test\s+repl-dead-2\s+key_9\s+actor deleted\s+\d+\s+\S+\s+second$/m);
		const one = await run(deadCommand, broker, { options: { limit: "1" } });
		assert.equal(one.lines.filter((l) => /^repl-test\s+repl-dead-\d/.test(l)).length, 1, one.text());
		assert.ok(one.lines.includes("repl-test: showing 1 of 2 (use --limit)"), one.text());
		assert.match(text, new RegExp(`^RabbitMQ dead-letter queue ${deadLetterQueueOf(env.KEYHIVE_QUEUE).replace(/\./g, "\\.")}: 1 message$`, "m"));

		const requeue = await run(deadCommand, broker, { options: { requeue: true, limit: "5" } });
		assert.match(requeue.text(), /^repl-test: requeued 2 dead letters$/m);
		assert.match(requeue.text(), /^requeued 2 in all/m);
		assert.match((await run(deadCommand, broker)).text(), /^0 dead letters in the stores of 1 node$/m);
		// Pending again, they reach key_9, which starts afresh after its deletion.
		await waitFor(async () => (await callAction(broker, "worker.get", { id: "key_9" }))?.payload === 2, {
			message: "key_9 to process the requeued rows",
			timeoutMs: 15_000,
		});
	});

	it("bad input gives one line each, never a stack trace", async () => {
		assert.equal((await run(whoisCommand, broker, { key: "" })).text(), "whois: <key> is required");
		assert.equal(
			(await run(loadCommand, broker, { options: { messages: "abc", keys: "5" } })).text(),
			'load: --messages must be a whole number from 1 to 100000000, got "abc"',
		);
		assert.equal((await run(loadCommand, broker, { options: { messages: "10" } })).text(), "load: --keys is required");
		assert.match((await run(loadCommand, broker, { servicePath: "x.js", options: { messages: "5", keys: "1" } })).text(), /^load: give either --messages/);
		assert.match((await run(loadCommand, broker, { options: {} })).text(), /^load: give --messages N --keys K .* or a service file/);
		assert.match((await run(deadCommand, broker, { options: { limit: "-3" } })).text(), /^dead: --limit must be a whole number from 1/);
		// The built-in behaviour of load: a missing service file is reported by moleculer-repl's own handler.
		const missing = path.join(dataDir, "missing.service.js");
		const warned: unknown[][] = [];
		const warn = console.warn;
		console.warn = (...a: unknown[]) => void warned.push(a);
		try {
			await run(loadCommand, broker, { servicePath: missing, options: {} });
		} finally {
			console.warn = warn;
		}
		assert.match(String(warned[0]?.join(" ")), /The service file is not exists!/);
	});
});

describe("REPL commands when services are not reachable", () => {
	let broker: ServiceBroker;

	before(async () => {
		broker = new ServiceBroker({ nodeID: "repl-empty", logger: false });
		await broker.start();
	});

	after(async () => {
		await broker?.stop();
	});

	it("prints one line naming the missing service", async () => {
		assert.equal(
			(await run(publishCommand, broker, { key: "k", payload: "p" })).text(),
			"publish: ingest.publish is not reachable: no available node runs the ingest service",
		);
		assert.equal((await run(actorCommand, broker, { id: "key_1" })).text(), "actor: worker.get is not reachable: no available node runs the worker service");
		assert.equal(
			(await run(whoisCommand, broker, { key: "key_1" })).text(),
			"whois: topology.whois is not reachable: no available node runs the topology service",
		);
		assert.equal((await run(clusterCommand, broker)).text(), "cluster: topology.members is not reachable: no available node runs the topology service");
		assert.equal((await run(deadCommand, broker)).text(), "dead: topology.members is not reachable: no available node runs the topology service");
		assert.equal(
			(await run(loadCommand, broker, { options: { messages: "10", keys: "2" } })).text(),
			"load: topology.members is not reachable: no available node runs the topology service",
		);
	});

	it("dead says RabbitMQ is not connected when ingest.status fails or reports it", async () => {
		const svc = broker.createService({
			name: "topology",
			actions: { members: (): MembersReply => ({ view: "v", members: [], participants: [] }) },
		});
		const ingest = broker.createService({
			name: "ingest",
			actions: { status: () => ({ connected: false, queue: "q", deadQueue: "q.dead", deadQueueDepth: null }) satisfies Partial<IngestStatusReply> },
		});
		await broker.waitForServices(["topology", "ingest"]);
		try {
			const out = await run(deadCommand, broker);
			assert.deepEqual(out.lines, [
				"dead: no keyhive node answered (no store service is available)",
				"0 dead letters in the stores of 0 nodes",
				"RabbitMQ not connected",
			]);
		} finally {
			await broker.destroyService(ingest);
		}
		const out = await run(deadCommand, broker);
		assert.equal(out.lines.at(-1), "RabbitMQ not connected (ingest.status is not reachable: no available node runs the ingest service)");
		await broker.destroyService(svc);
	});
});

describe("cluster with a node that runs no worker service", () => {
	let broker: ServiceBroker;

	before(async () => {
		broker = new ServiceBroker({ nodeID: "store-only", logger: false });
		broker.createService({
			name: "topology",
			actions: {
				members: (): MembersReply => ({ view: "v0", members: [], participants: ["store-only"] }),
				state: (): TopologyStateReply => ({
					node: "store-only",
					state: "assembling",
					view: { id: "v0", members: [] },
					settled: null,
					waitingFor: [],
					lastRehashMs: 0,
				}),
			},
		});
		broker.createService({
			name: "store",
			actions: {
				stats: (): StoreStatsReply => ({
					node: "store-only",
					pending: 7,
					outbox: 0,
					dead: 2,
					processedIds: 0,
					outboundKeys: 0,
					shippedRows: 3,
					shipFailures: 0,
				}),
			},
		});
		await broker.start();
	});

	after(async () => {
		await broker?.stop();
	});

	it('shows "-" where the worker and the ring have nothing to say', async () => {
		const out = await run((b, a, p) => clusterCommand(b, a, p, 50), broker);
		assert.equal(out.lines[0], "view v0  ·  0 members  ·  state assembling");
		assert.match(out.lines[3], /^store-only \(\*\)\s+assembling\s+-\s+-\s+7\s+3\s+-\s+2\s+-$/);
		assert.equal(out.lines.length, 4, out.text());
	});
});

/** The real moleculer-repl in a moleculer-runner child, fed one command at a time. */
class ReplProcess {
	private out = "";
	private readonly child: ChildProcessWithoutNullStreams;
	readonly exited: Promise<number | null>;

	constructor(args: string[], env: Record<string, string>) {
		this.child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "node_modules/moleculer/bin/moleculer-runner.js"), ...args], {
			cwd: ROOT,
			env: { ...process.env, ...env },
			stdio: ["pipe", "pipe", "pipe"],
		});
		this.child.stdout.on("data", (chunk: Buffer) => (this.out += chunk.toString()));
		this.child.stderr.on("data", (chunk: Buffer) => (this.out += chunk.toString()));
		this.exited = new Promise((resolve) => this.child.on("exit", (code) => resolve(code)));
	}

	get output(): string {
		return this.out;
	}

	/** Sends one line and resolves with what was printed until `until` matched. */
	async send(line: string, until: RegExp, timeoutMs = 30_000): Promise<string> {
		const start = this.out.length;
		this.child.stdin.write(`${line}\n`);
		await waitFor(() => until.test(this.out.slice(start)), {
			message: `"${line}" to print ${until}`,
			timeoutMs,
			detail: () => this.out.slice(start).slice(-2000),
		});
		return this.out.slice(start);
	}

	async waitFor(pattern: RegExp, timeoutMs = 30_000): Promise<void> {
		await waitFor(() => pattern.test(this.out), { message: String(pattern), timeoutMs, detail: () => this.out.slice(-2000) });
	}

	end(): void {
		this.child.stdin.end();
	}

	kill(): void {
		if (this.child.exitCode === null) this.child.kill("SIGKILL");
	}
}

describe("moleculer-repl with keyhive's commands (moleculer-runner --repl)", () => {
	const env = amqpEnv();
	let dir: string;
	let repl: ReplProcess | undefined;

	before(() => {
		dir = tempDir("keyhive-repl-runner").dir;
		fs.writeFileSync(path.join(dir, "probe.service.js"), 'module.exports = { name: "probe", actions: { hello: () => "hello from probe" } };\n');
	});

	after(async () => {
		repl?.kill();
		await deleteQueues(env);
		fs.rmSync(dir, { recursive: true, force: true });
	});

	it("help lists the commands; load --messages runs the load generator and load <file> still loads a service", async () => {
		repl = new ReplProcess(["--config", "moleculer.config.ts", "--repl", ...SERVICES], {
			...env,
			NODEID: `repl-runner-${process.pid}`,
			KEYHIVE_DATA_DIR: path.join(dir, "data"),
			KEYHIVE_ACTORS: "100",
			LOGLEVEL: "warn",
			TRANSPORTER: "",
			HOME: dir, // moleculer-repl keeps its history in ~/.moleculer_repl_history
		});
		await repl.waitFor(/mol \$ /);
		const help = await repl.send("help", /help \[command\]/);
		for (const command of ["publish", "load [options] [servicePath]", "actor", "whois", "cluster", "dead [options]", "loadFolder"]) {
			assert.ok(help.includes(command), `help lists ${command}:\n${help}`);
		}
		const loadHelp = await repl.send("load --help", /--wait <s>[\s\S]*-h, --help/);
		assert.match(loadHelp, /--messages <n>\s+how many messages/);
		assert.match(loadHelp, /--keys <k>\s+spread them/);

		// The inbox exists once this node's ingest consumes it (RabbitMQ is up here); until then a publish fails.
		// biome-ignore lint/suspicious/noControlCharactersInRegex: the REPL colours its output with ANSI escapes.
		await waitFor(async () => /consuming: (\x1b\[\d+m)?true/.test(await repl!.send("call ingest.status", /mol \$ $/)), {
			message: "ingest to consume its inbox",
			timeoutMs: 15_000,
		});

		await repl.send(`load ${path.join(dir, "probe.service.js")}`, /Loaded successfully!/);
		await repl.send("call probe.hello", /hello from probe/);

		const load = await repl.send("load --messages 300 --keys 7", /processed 300 of 300|load: .*/, 60_000);
		assert.match(load, /published 300 messages in .* msg\/s \(via (rabbitmq|store)\)/);
		assert.match(load, /processed 300 of 300 in /);

		const bad = await repl.send("load --messages 5 --bogus 1", /unknown option/);
		assert.match(bad, /error: unknown option '--bogus'/);
		assert.doesNotMatch(repl.output, /already exists\. Skipping|An error ocurred while registering/);

		repl.end();
		assert.equal(await repl.exited, 0);
	});
});
