/**
 * The soak's cluster: its own namespace, queues, temp dir and perform log;
 * real node processes (test/support/cluster.ts) under logical names c1, c2, …
 * whose nodeIDs carry a per-run tag (node connections are named
 * "keyhive <nodeID>" on a RabbitMQ other runs share, so closing one from
 * outside must not hit another run's node); the load and the results.
 */
import { randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import type { ServiceBroker } from "moleculer";
import { parsePerformLog, type PerformRecord } from "../../lib/actors/perform-log";
import { callAction } from "../../lib/contracts";
import { NodeProcess, observer, waitForReady } from "../support/cluster";
import { AMQP_URL, NATS_URL } from "../support/env";
import { deleteJournalStream } from "../support/journal-stream";
import { tempDir } from "../support/tmp";
import { deleteQueues, Producer, ResultsCollector } from "../support/traffic";
import { waitFor } from "../support/wait";
import { activeConsumerOf } from "./rabbit";

/** Log lines stamped with wall-clock time and time since the soak started. */
export class Clock {
	readonly startedAt = Date.now();

	elapsed(at = Date.now()): number {
		return at - this.startedAt;
	}

	stamp(at = Date.now()): string {
		const wall = new Date(at).toISOString().slice(11, 23);
		const s = this.elapsed(at) / 1000;
		const rel = `${String(Math.floor(s / 60)).padStart(2, "0")}:${(s % 60).toFixed(1).padStart(4, "0")}`;
		return `[${wall} +${rel}]`;
	}

	log(line: string, at?: number): void {
		console.log(`${this.stamp(at)} ${line}`);
	}
}

export function seconds(ms: number): string {
	return `${(ms / 1000).toFixed(1)}s`;
}

export interface SoakClusterOptions {
	actors: number;
	/** How long a ready wait may take before it counts as a failure. */
	readyTimeoutMs?: number;
}

export class SoakCluster {
	readonly tag = randomBytes(3).toString("hex");
	readonly namespace = `chaos-${this.tag}`;
	readonly dir = tempDir(`keyhive-chaos-${this.tag}`).dir;
	readonly performLog = path.join(this.dir, "performs.log");
	readonly inbox = `${this.namespace}.inbox`;
	readonly resultsQueue = `${this.namespace}.processed`;
	readonly results = new ResultsCollector(AMQP_URL, this.resultsQueue);
	readonly readyTimeoutMs: number;
	/** Every node ever started, by logical name. */
	readonly nodes = new Map<string, NodeProcess>();
	/** Logical names of nodes that left gracefully for good. */
	readonly retired = new Set<string>();
	producer: Producer | null = null;
	/** Set once cleanup began: no node starts after that. */
	private closing = false;
	private broker: ServiceBroker | null = null;
	private readonly env: Record<string, string>;

	constructor(options: SoakClusterOptions) {
		this.readyTimeoutMs = options.readyTimeoutMs ?? 90_000;
		this.env = {
			NAMESPACE: this.namespace,
			KEYHIVE_QUEUE: this.inbox,
			KEYHIVE_RESULTS_QUEUE: this.resultsQueue,
			KEYHIVE_ACTORS: String(options.actors),
			KEYHIVE_PERFORM_LOG: this.performLog,
			AMQP_URL,
		};
	}

	/** The nodeID of a logical node. */
	id(logical: string): string {
		return `${logical}-${this.tag}`;
	}

	/** The logical name of a nodeID or of a connection name "keyhive <nodeID>". */
	logicalOf(name: string | null): string | null {
		if (!name) return null;
		const id = name.replace(/^keyhive /, "");
		return id.endsWith(`-${this.tag}`) ? id.slice(0, -this.tag.length - 1) : id;
	}

	get observer(): ServiceBroker {
		if (!this.broker) throw new Error("the soak cluster is not open");
		return this.broker;
	}

	async open(): Promise<void> {
		// The soak handles SIGINT and SIGTERM itself: it must clean up and report the interruption.
		this.broker = await observer(this.namespace, { ownSignals: true });
		await this.results.start();
	}

	/** Starts a node (a new one, or a stopped one again with the same nodeID and data dir). */
	start(logical: string): NodeProcess {
		if (this.closing) throw new Error(`not starting ${logical}: the soak cluster is closing`);
		let node = this.nodes.get(logical);
		if (!node) {
			node = new NodeProcess({ nodeID: this.id(logical), dir: this.dir, env: this.env });
			this.nodes.set(logical, node);
		}
		node.start();
		return node;
	}

	node(logical: string): NodeProcess {
		const node = this.nodes.get(logical);
		if (!node) throw new Error(`no node ${logical}`);
		return node;
	}

	/** Logical names of the nodes running now. */
	running(): string[] {
		return [...this.nodes].filter(([, n]) => n.running).map(([name]) => name);
	}

	/** Waits until exactly these logical nodes are ready on one view of exactly these members. */
	async ready(logicals: readonly string[], timeoutMs = this.readyTimeoutMs): Promise<void> {
		const ids = logicals.map((l) => this.id(l));
		await waitForReady(this.observer, ids, ids, timeoutMs);
	}

	/** Waits until a node's ingest is connected to RabbitMQ and consuming again. */
	async consuming(logical: string, timeoutMs = 30_000): Promise<void> {
		await waitFor(
			async () => {
				const s = await callAction(this.observer, "ingest.status", {}, { nodeID: this.id(logical), timeout: 3000 });
				return s.connected && s.consuming;
			},
			{ timeoutMs, message: `${logical} consuming from RabbitMQ again`, intervalMs: 250 },
		);
	}

	/** The logical node holding the inbox's single-active-consumer slot, or "?" when it cannot be told. */
	async activeConsumer(): Promise<string> {
		try {
			return this.logicalOf(await activeConsumerOf(this.inbox)) ?? "none";
		} catch {
			return "?";
		}
	}

	/** Starts publishing `rate` messages per second over `keys` keys, with confirms. */
	async startLoad(rate: number, keys: number): Promise<void> {
		this.producer = new Producer(AMQP_URL, this.inbox, this.namespace);
		await this.producer.start();
		const perTick = Math.max(1, Math.ceil(rate / 10));
		const tickMs = Math.max(1, Math.round((1000 * perTick) / rate));
		this.producer.startSteady(perTick, tickMs, keys);
	}

	async stopLoad(): Promise<void> {
		await this.producer?.stopSteady();
	}

	get published() {
		return this.producer?.published ?? [];
	}

	/** How many published ids have at least one result line. */
	performedCount(): number {
		const seen = new Set(this.results.results.map((r) => r.id));
		let n = 0;
		for (const m of this.published) if (seen.has(m.id)) n++;
		return n;
	}

	performs(): PerformRecord[] {
		return fs.existsSync(this.performLog) ? parsePerformLog(fs.readFileSync(this.performLog, "utf8")) : [];
	}

	/** SQLite file of every node ever started, by logical name. */
	storeFiles(): Map<string, string> {
		return new Map([...this.nodes].map(([name, n]) => [name, path.join(n.dataDir, `${n.nodeID}.sqlite`)]));
	}

	/** SIGKILL to every node at once, without waiting: the emergency stop. */
	killAll(): void {
		this.closing = true;
		for (const node of this.nodes.values()) void node.kill();
	}

	/** Stops everything this run made; removes the temp dir unless keepDir. */
	async close(keepDir: boolean, stopTimeoutMs = 20_000): Promise<void> {
		this.closing = true;
		await this.producer?.close().catch(() => undefined);
		await Promise.all([...this.nodes.values()].map((n) => n.stop(stopTimeoutMs)));
		await this.results.close();
		await this.broker?.stop().catch(() => undefined);
		await deleteQueues(AMQP_URL, this.inbox, this.resultsQueue).catch(() => undefined);
		if (!keepDir) {
			await deleteJournalStream(NATS_URL, this.namespace);
			fs.rmSync(this.dir, { recursive: true, force: true });
		}
	}
}
