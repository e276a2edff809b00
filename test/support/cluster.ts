/**
 * Real keyhive node processes for multi-node tests: each one is `npm run node`
 * in its own process group (so SIGTERM and SIGKILL reach the node itself, not
 * only npm), with its own data dir and log file, on the real NATS; and
 * TestCluster, a namespace, queues and perform log of a test's own for them.
 */
import { spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ServiceBroker } from "moleculer";
import { natsOptions } from "../../lib/nats";
import { findOverlaps, parsePerformLog } from "../../lib/actors/perform-log";
import { callAction, type TopologyStateReply } from "../../lib/contracts";
import { deleteJournalStream } from "./journal-stream";
import { AMQP_URL, NATS_URL, uniqueName } from "./env";
import { tempDir } from "./tmp";
import { deleteQueues, Producer, ResultsCollector } from "./traffic";
import { waitFor } from "./wait";

const ROOT = path.resolve(__dirname, "..", "..");

export interface NodeOptions {
	nodeID: string;
	dir: string;
	env?: Record<string, string>;
}

export class NodeProcess {
	readonly nodeID: string;
	readonly dataDir: string;
	readonly logFile: string;
	private readonly env: Record<string, string>;
	private child: ChildProcess | null = null;
	private exit: Promise<number | null> = Promise.resolve(null);

	constructor(options: NodeOptions) {
		this.nodeID = options.nodeID;
		this.dataDir = path.join(options.dir, options.nodeID);
		this.logFile = path.join(options.dir, `${options.nodeID}.log`);
		this.env = options.env ?? {};
	}

	get running(): boolean {
		return this.child !== null;
	}

	start(): void {
		if (this.child) throw new Error(`${this.nodeID} is already running`);
		const log = fs.openSync(this.logFile, "a");
		const child = spawn("npm", ["run", "--silent", "node"], {
			cwd: ROOT,
			detached: true,
			stdio: ["ignore", log, log],
			env: {
				...process.env,
				NODEID: this.nodeID,
				KEYHIVE_DATA_DIR: this.dataDir,
				TRANSPORTER: NATS_URL,
				LOGLEVEL: "info",
				...this.env,
			},
		});
		fs.closeSync(log);
		this.child = child;
		// npm exits at once on a signal while the node in its group is still leaving: wait for the whole group.
		this.exit = new Promise((resolve) => {
			child.once("exit", (code) => {
				const poll = setInterval(() => {
					if (groupAlive(child.pid!)) return;
					clearInterval(poll);
					resolve(code);
				}, 50);
			});
		});
		void this.exit.then(() => {
			if (this.child === child) this.child = null;
		});
	}

	private signal(signal: NodeJS.Signals): void {
		if (!this.child?.pid) return;
		try {
			process.kill(-this.child.pid, signal);
		} catch {
			// Already gone.
		}
	}

	/** Graceful leave: SIGTERM, then wait for the process to exit. */
	async stop(timeoutMs = 60_000): Promise<number | null> {
		const exit = this.exit;
		this.signal("SIGTERM");
		const timer = setTimeout(() => this.signal("SIGKILL"), timeoutMs);
		const code = await exit;
		clearTimeout(timer);
		return code;
	}

	/** A crash: SIGKILL to the whole process group. */
	async kill(): Promise<void> {
		const exit = this.exit;
		this.signal("SIGKILL");
		await exit;
	}

	/** A stall (a long GC pause, a VM paused): SIGSTOP to the whole process group. */
	freeze(): void {
		this.signal("SIGSTOP");
	}

	thaw(): void {
		this.signal("SIGCONT");
	}

	/** Resolves with the exit code once the node's processes are all gone by themselves. */
	exited(): Promise<number | null> {
		return this.exit;
	}

	/** The node's disk lost: its data dir deleted (the node must not be running). */
	deleteData(): void {
		if (this.child) throw new Error(`${this.nodeID} is running`);
		fs.rmSync(this.dataDir, { recursive: true, force: true });
	}

	log(): string {
		return fs.existsSync(this.logFile) ? fs.readFileSync(this.logFile, "utf8") : "";
	}
}

/** Whether any process of the process group pgid is alive. */
export function groupAlive(pgid: number): boolean {
	try {
		process.kill(-pgid, 0);
		return true;
	} catch {
		return false;
	}
}

/**
 * A broker that joins the cluster to observe and call it, without any keyhive service.
 * ownSignals: leave SIGINT/SIGTERM to the caller (a broker's own handlers stop it and exit 0).
 */
export async function observer(namespace: string, options: { url?: string; ownSignals?: boolean } = {}): Promise<ServiceBroker> {
	const broker = new ServiceBroker({
		nodeID: uniqueName("observer"),
		namespace,
		transporter: { type: "NATS", options: natsOptions(options.url ?? NATS_URL) },
		logger: false,
		heartbeatInterval: 1,
		heartbeatTimeout: 2,
		skipProcessEventRegistration: options.ownSignals ?? false,
	});
	await broker.start();
	return broker;
}

export type NodeState = TopologyStateReply;

export async function stateOf(broker: ServiceBroker, nodeID: string): Promise<NodeState> {
	return callAction(broker, "topology.state", {}, { nodeID, timeout: 2000 });
}

/** Waits until every node is ready on one view whose members are exactly `members`. */
export async function waitForReady(broker: ServiceBroker, nodes: string[], members: string[], timeoutMs = 30_000): Promise<NodeState[]> {
	const expected = [...members].sort().join(",");
	return waitFor(
		async () => {
			const states = await Promise.all(nodes.map((n) => stateOf(broker, n)));
			const ok = states.every((s) => s.state === "ready" && s.view.members.join(",") === expected && s.view.id === states[0].view.id);
			return ok ? states : null;
		},
		{ timeoutMs, message: `nodes ${nodes.join(", ")} ready with members ${expected}`, intervalMs: 200 },
	);
}

/** A test cluster: its own namespace, queues, data dirs and perform log. */
export class TestCluster {
	readonly name = uniqueName("cluster");
	readonly dir = tempDir(this.name).dir;
	readonly performLog = path.join(this.dir, "performs.log");
	readonly env: Record<string, string>;
	readonly results: ResultsCollector;
	readonly nodes = new Map<string, NodeProcess>();
	observer!: ServiceBroker;

	/** natsUrl: a NATS server of the test's own instead of the shared one. */
	constructor(
		env: Record<string, string> = {},
		private readonly natsUrl?: string,
	) {
		this.env = {
			NAMESPACE: this.name,
			KEYHIVE_QUEUE: `${this.name}.inbox`,
			KEYHIVE_RESULTS_QUEUE: `${this.name}.processed`,
			KEYHIVE_ACTORS: "5000",
			KEYHIVE_PERFORM_LOG: this.performLog,
			AMQP_URL,
			...(natsUrl ? { TRANSPORTER: natsUrl } : {}),
			...env,
		};
		this.results = new ResultsCollector(AMQP_URL, this.env.KEYHIVE_RESULTS_QUEUE);
	}

	async open(): Promise<void> {
		this.observer = await observer(this.name, { url: this.natsUrl });
		await this.results.start();
	}

	node(nodeID: string, env: Record<string, string> = {}): NodeProcess {
		const node = new NodeProcess({ nodeID, dir: this.dir, env: { ...this.env, ...env } });
		this.nodes.set(nodeID, node);
		return node;
	}

	producer(): Producer {
		return new Producer(AMQP_URL, this.env.KEYHIVE_QUEUE, this.name);
	}

	/** Waits for members to be ready with exactly these members; on a timeout the error carries the nodes' logs. */
	async ready(members: string[], timeoutMs = 30_000): Promise<void> {
		await waitForReady(this.observer, members, members, timeoutMs).catch((err: Error) => {
			throw new Error(`${err.message}\n${this.logs()}`);
		});
	}

	performOverlaps() {
		const records = fs.existsSync(this.performLog) ? parsePerformLog(fs.readFileSync(this.performLog, "utf8")) : [];
		return { records: records.length, overlaps: findOverlaps(records) };
	}

	logs(): string {
		return [...this.nodes.values()].map((n) => `--- ${n.nodeID}\n${n.log().split("\n").slice(-40).join("\n")}`).join("\n");
	}

	async close(): Promise<void> {
		await Promise.all([...this.nodes.values()].map((n) => n.stop(20_000)));
		await this.results.close();
		await this.observer?.stop();
		await deleteQueues(AMQP_URL, this.env.KEYHIVE_QUEUE, this.env.KEYHIVE_RESULTS_QUEUE);
		await deleteJournalStream(this.env.TRANSPORTER ?? NATS_URL, this.name);
	}
}
