/**
 * keyhive's configuration, read once from the environment.
 * Every value is checked here so a bad setting stops the node at start with a
 * sentence that names the variable, instead of failing later with a stack trace.
 */
import * as path from "path";

export class ConfigError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "ConfigError";
	}
}

export type PayloadFormat = "text" | "json";
export type KeySource = { kind: "header"; name: string } | { kind: "routingKey" };

export interface KeyhiveConfig {
	nodeID: string | undefined;
	transporter: string | undefined;
	namespace: string;
	dataDir: string;
	actors: number;
	actorTimeoutMs: number;
	consensus: number;
	heartbeatIntervalS: number;
	heartbeatTimeoutS: number;
	discoveryMs: number;
	leaveTimeoutMs: number;
	ringPoints: number;
	maxAttempts: number;
	retryBaseMs: number;
	performTimeoutMs: number;
	maxBatch: number;
	demoWorkMs: number;
	dedupeWindowMs: number;
	shipBatchRows: number;
	amqpUrl: string;
	queue: string;
	resultsQueue: string;
	keySource: KeySource;
	prefetch: number;
	batchSize: number;
	batchMs: number;
	highWater: number;
	lowWater: number;
	maxKeyLength: number;
	maxBodyBytes: number;
	maxHeaderBytes: number;
	payloadFormat: PayloadFormat;
	metricsPort: number;
	performLog: string | undefined;
	logLevel: string;
}

type Env = Record<string, string | undefined>;

/** One row per variable: the README's configuration table is written from the same facts. */
export const VARIABLES: ReadonlyArray<{ name: string; default: string; meaning: string }> = [
	{ name: "NODEID", default: "the hostname", meaning: "Moleculer nodeID; keep it stable across restarts so a node finds its own data" },
	{ name: "TRANSPORTER", default: "(none: a node runs alone)", meaning: "Moleculer transporter URL, e.g. nats://127.0.0.1:4222 (credentials allowed, never logged)" },
	{ name: "NAMESPACE", default: "(none)", meaning: "Moleculer namespace: nodes see only peers with the same one (one cluster per namespace)" },
	{ name: "KEYHIVE_DATA_DIR", default: "./data", meaning: "directory of this node's SQLite file (<nodeID>.sqlite)" },
	{ name: "KEYHIVE_ACTORS", default: "1000000", meaning: "number of demo actors key_1 … key_N" },
	{ name: "KEYHIVE_ACTOR_TIMEOUT_MS", default: "0", meaning: "demo actors' periodic perform interval; 0 = perform only when messages arrive" },
	{ name: "KEYHIVE_CONSENSUS", default: "1", meaning: "minimum members in view; below it nothing is processed" },
	{ name: "KEYHIVE_HEARTBEAT_INTERVAL_S", default: "1", meaning: "Moleculer heartbeat interval (seconds)" },
	{ name: "KEYHIVE_HEARTBEAT_TIMEOUT_S", default: "2", meaning: "a node silent this long is dead (noticed within about twice this)" },
	{ name: "KEYHIVE_DISCOVERY_MS", default: "1500 (0 without a transporter)", meaning: "how long a starting node listens for peers before it takes any key" },
	{ name: "KEYHIVE_LEAVE_TIMEOUT_MS", default: "30000", meaning: "longest graceful leave; what is not handed off by then stays on disk" },
	{ name: "KEYHIVE_RING_POINTS", default: "160", meaning: "points per node on the consistent-hash ring (all nodes must agree)" },
	{ name: "KEYHIVE_MAX_ATTEMPTS", default: "5", meaning: "performs of one batch before its messages are dead-lettered" },
	{ name: "KEYHIVE_RETRY_BASE_MS", default: "100", meaning: "first retry delay; doubles per attempt (capped at 30 s)" },
	{ name: "KEYHIVE_PERFORM_TIMEOUT_MS", default: "30000", meaning: "a perform that has not settled by then counts as failed" },
	{ name: "KEYHIVE_MAX_BATCH", default: "100", meaning: "messages given to one perform at most" },
	{ name: "KEYHIVE_DEMO_WORK_MS", default: "0", meaning: "demo worker only: simulated work per perform (ms), for benchmarks" },
	{ name: "KEYHIVE_DEDUPE_WINDOW_MS", default: "3600000", meaning: "how long processed message ids are remembered to drop redeliveries" },
	{ name: "KEYHIVE_SHIP_BATCH", default: "2000", meaning: "rows per handoff call to another node" },
	{ name: "AMQP_URL", default: "amqp://guest:guest@127.0.0.1:5672", meaning: "RabbitMQ URL (credentials never logged)" },
	{ name: "KEYHIVE_QUEUE", default: "keyhive.inbox", meaning: "queue consumed; its dead letters go to <queue>.dead" },
	{ name: "KEYHIVE_RESULTS_QUEUE", default: "keyhive.processed", meaning: "durable queue the outbox publishes results to" },
	{ name: "KEYHIVE_KEY_FROM", default: "header:key", meaning: "where a message's key is: header:<name> or routingKey" },
	{ name: "KEYHIVE_PREFETCH", default: "1000", meaning: "unacked deliveries the consumer may hold" },
	{ name: "KEYHIVE_BATCH_SIZE", default: "500", meaning: "deliveries committed per store transaction" },
	{ name: "KEYHIVE_BATCH_MS", default: "5", meaning: "longest wait to fill a delivery batch" },
	{ name: "KEYHIVE_HIGH_WATER", default: "200000", meaning: "pending rows at which this node stops taking deliveries" },
	{ name: "KEYHIVE_LOW_WATER", default: "100000", meaning: "pending rows at which it takes deliveries again" },
	{ name: "KEYHIVE_MAX_KEY_LENGTH", default: "256", meaning: "longer keys are dead-lettered" },
	{ name: "KEYHIVE_MAX_BODY_BYTES", default: "262144", meaning: "larger bodies are dead-lettered" },
	{ name: "KEYHIVE_MAX_HEADER_BYTES", default: "16384", meaning: "larger header tables are dead-lettered" },
	{ name: "KEYHIVE_PAYLOAD_FORMAT", default: "text", meaning: "text (UTF-8) or json (bodies that do not parse are dead-lettered)" },
	{ name: "KEYHIVE_METRICS_PORT", default: "0", meaning: "Prometheus metrics port; 0 = off" },
	{ name: "KEYHIVE_PERFORM_LOG", default: "(off)", meaning: "file to append one line per perform (key, node, start, end) for audits" },
	{ name: "LOGLEVEL", default: "info", meaning: "Moleculer log level" },
];

function integer(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
	const raw = env[name];
	if (raw === undefined || raw.trim() === "") return fallback;
	if (!/^-?\d+$/.test(raw.trim())) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
	const value = Number(raw.trim());
	if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
	return value;
}

function text(env: Env, name: string, fallback: string): string {
	const raw = env[name];
	if (raw === undefined || raw.trim() === "") return fallback;
	return raw.trim();
}

function url(env: Env, name: string, fallback: string | undefined, schemes: string[]): string | undefined {
	const raw = env[name];
	if (raw === undefined || raw.trim() === "") return fallback;
	let parsed: URL;
	try {
		parsed = new URL(raw.trim());
	} catch {
		throw new ConfigError(`${name} is not a URL: "${redactUrl(raw)}"`);
	}
	const scheme = parsed.protocol.replace(/:$/, "");
	if (!schemes.includes(scheme)) {
		throw new ConfigError(`${name} must use ${schemes.join(" or ")}://, got ${scheme}://`);
	}
	return raw.trim();
}

function keySource(env: Env): KeySource {
	const raw = text(env, "KEYHIVE_KEY_FROM", "header:key");
	if (raw === "routingKey") return { kind: "routingKey" };
	const match = /^header:(.+)$/.exec(raw);
	if (!match) throw new ConfigError(`KEYHIVE_KEY_FROM must be header:<name> or routingKey, got "${raw}"`);
	return { kind: "header", name: match[1] };
}

/** Replaces the password (or a lone token) of a URL with *** so it can be logged. */
export function redactUrl(raw: string): string {
	try {
		const url = new URL(raw);
		if (url.password) url.password = "***";
		else if (url.username) url.username = "***";
		else return raw;
		return url.toString().replace(/%2A%2A%2A/g, "***");
	} catch {
		// Not parseable: hide everything up to the last @, which is where credentials end.
		return raw.replace(/(\/\/)(.*)@/, "$1***@");
	}
}

/**
 * Not a plain object on purpose: moleculer-runner rewrites plain option objects
 * from same-named environment variables after loading the config (KEYHIVE_QUEUE=123
 * would become a number); this configuration is already read and checked.
 */
class CheckedConfig {}

export function readConfig(env: Env = process.env): KeyhiveConfig {
	const nodeID = env.NODEID?.trim() || undefined;
	if (nodeID !== undefined && !/^[A-Za-z0-9._-]{1,100}$/.test(nodeID)) {
		throw new ConfigError(`NODEID may hold letters, digits, '.', '_' and '-' (1 to 100), got "${nodeID}"`);
	}
	const highWater = integer(env, "KEYHIVE_HIGH_WATER", 200_000, 1);
	const lowWater = integer(env, "KEYHIVE_LOW_WATER", Math.floor(highWater / 2), 0);
	if (lowWater >= highWater) {
		throw new ConfigError(`KEYHIVE_LOW_WATER (${lowWater}) must be below KEYHIVE_HIGH_WATER (${highWater})`);
	}
	const heartbeatIntervalS = integer(env, "KEYHIVE_HEARTBEAT_INTERVAL_S", 1, 1, 60);
	const heartbeatTimeoutS = integer(env, "KEYHIVE_HEARTBEAT_TIMEOUT_S", 2, 1, 600);
	if (heartbeatTimeoutS < heartbeatIntervalS) {
		throw new ConfigError(`KEYHIVE_HEARTBEAT_TIMEOUT_S (${heartbeatTimeoutS}) must be at least KEYHIVE_HEARTBEAT_INTERVAL_S (${heartbeatIntervalS})`);
	}
	const format = text(env, "KEYHIVE_PAYLOAD_FORMAT", "text");
	if (format !== "text" && format !== "json") {
		throw new ConfigError(`KEYHIVE_PAYLOAD_FORMAT must be text or json, got "${format}"`);
	}
	const transporter = url(env, "TRANSPORTER", undefined, ["nats", "tls"]);
	const namespace = text(env, "NAMESPACE", "");
	if (!/^[A-Za-z0-9._-]*$/.test(namespace)) throw new ConfigError(`NAMESPACE may hold letters, digits, '.', '_' and '-', got "${namespace}"`);
	const config: KeyhiveConfig = {
		nodeID,
		transporter,
		namespace,
		dataDir: path.resolve(text(env, "KEYHIVE_DATA_DIR", "./data")),
		actors: integer(env, "KEYHIVE_ACTORS", 1_000_000, 0, 50_000_000),
		actorTimeoutMs: integer(env, "KEYHIVE_ACTOR_TIMEOUT_MS", 0, 0, 86_400_000),
		consensus: integer(env, "KEYHIVE_CONSENSUS", 1, 1, 1000),
		heartbeatIntervalS,
		heartbeatTimeoutS,
		discoveryMs: integer(env, "KEYHIVE_DISCOVERY_MS", transporter ? 1500 : 0, 0, 600_000),
		leaveTimeoutMs: integer(env, "KEYHIVE_LEAVE_TIMEOUT_MS", 30_000, 0, 3_600_000),
		ringPoints: integer(env, "KEYHIVE_RING_POINTS", 160, 1, 10_000),
		maxAttempts: integer(env, "KEYHIVE_MAX_ATTEMPTS", 5, 1, 1000),
		retryBaseMs: integer(env, "KEYHIVE_RETRY_BASE_MS", 100, 0, 3_600_000),
		performTimeoutMs: integer(env, "KEYHIVE_PERFORM_TIMEOUT_MS", 30_000, 1, 86_400_000),
		maxBatch: integer(env, "KEYHIVE_MAX_BATCH", 100, 1, 100_000),
		demoWorkMs: integer(env, "KEYHIVE_DEMO_WORK_MS", 0, 0, 600_000),
		dedupeWindowMs: integer(env, "KEYHIVE_DEDUPE_WINDOW_MS", 3_600_000, 1000),
		shipBatchRows: integer(env, "KEYHIVE_SHIP_BATCH", 2000, 1, 100_000),
		amqpUrl: url(env, "AMQP_URL", "amqp://guest:guest@127.0.0.1:5672", ["amqp", "amqps"])!,
		queue: text(env, "KEYHIVE_QUEUE", "keyhive.inbox"),
		resultsQueue: text(env, "KEYHIVE_RESULTS_QUEUE", "keyhive.processed"),
		keySource: keySource(env),
		prefetch: integer(env, "KEYHIVE_PREFETCH", 1000, 1, 65_535),
		batchSize: integer(env, "KEYHIVE_BATCH_SIZE", 500, 1, 65_535),
		batchMs: integer(env, "KEYHIVE_BATCH_MS", 5, 0, 60_000),
		highWater,
		lowWater,
		maxKeyLength: integer(env, "KEYHIVE_MAX_KEY_LENGTH", 256, 1, 65_535),
		maxBodyBytes: integer(env, "KEYHIVE_MAX_BODY_BYTES", 262_144, 1),
		maxHeaderBytes: integer(env, "KEYHIVE_MAX_HEADER_BYTES", 16_384, 1),
		payloadFormat: format,
		metricsPort: integer(env, "KEYHIVE_METRICS_PORT", 0, 0, 65_535),
		performLog: env.KEYHIVE_PERFORM_LOG?.trim() || undefined,
		logLevel: text(env, "LOGLEVEL", "info"),
	};
	return Object.assign(new CheckedConfig(), config);
}
