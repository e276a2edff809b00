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
	replicas: number;
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

/** One environment variable: the config field it sets, its default, how it is parsed, what it means. */
export interface Variable<K extends keyof KeyhiveConfig = keyof KeyhiveConfig> {
	name: string;
	key: K;
	/** Used when the variable is unset or blank, written as a user would set it; undefined: no value. */
	default: string | undefined;
	/** README's default cell when it is not the default as written. */
	shown?: string;
	/** Reads a set (trimmed, non-blank) value or the default; throws a ConfigError naming the variable. */
	parse(raw: string): KeyhiveConfig[K];
	meaning: string;
}

function variable<K extends keyof KeyhiveConfig>(v: Variable<K>): Variable<K> {
	return v;
}

function integer(name: string, min: number, max = Number.MAX_SAFE_INTEGER) {
	return (raw: string): number => {
		if (!/^-?\d+$/.test(raw)) throw new ConfigError(`${name} must be a whole number, got "${raw}"`);
		const value = Number(raw);
		if (value < min || value > max) throw new ConfigError(`${name} must be between ${min} and ${max}, got ${value}`);
		return value;
	};
}

function url(name: string, schemes: string[]) {
	return (raw: string): string => {
		let parsed: URL;
		try {
			parsed = new URL(raw);
		} catch {
			throw new ConfigError(`${name} is not a URL: "${redactUrl(raw)}"`);
		}
		const scheme = parsed.protocol.replace(/:$/, "");
		if (!schemes.includes(scheme)) {
			throw new ConfigError(`${name} must use ${schemes.join(" or ")}://, got ${scheme}://`);
		}
		return raw;
	};
}

/**
 * One URL or several, comma-separated (the servers of one NATS cluster). Each is
 * checked, and all must share the scheme and the credentials, since one connection
 * uses one set of each. A comma in a password is written %2C. Returned with blanks
 * around the commas removed.
 */
function urlList(name: string, schemes: string[]) {
	const one = url(name, schemes);
	return (raw: string): string => {
		if (!raw.includes(",")) return one(raw);
		const parts = raw.split(",").map((part) => part.trim());
		let parsed: URL[];
		try {
			parsed = parts.map((part) => new URL(one(part)));
		} catch {
			// A part's own message could show a piece of a password cut at a comma: name the whole, redacted.
			throw new ConfigError(
				`${name} must be one ${schemes.join(" or ")}:// URL or several separated by commas (a comma in a password is written %2C): "${redactUrl(raw)}"`,
			);
		}
		const [first] = parsed;
		for (const other of parsed.slice(1)) {
			if (other.protocol !== first.protocol) {
				throw new ConfigError(`${name} lists the servers of one cluster: every URL must use the same scheme, got ${first.protocol}// and ${other.protocol}//`);
			}
			if (other.username !== first.username || other.password !== first.password) {
				throw new ConfigError(`${name} lists the servers of one cluster: every URL must carry the same credentials (or none)`);
			}
		}
		return parts.join(",");
	};
}

const text = (raw: string): string => raw;

function keySource(raw: string): KeySource {
	if (raw === "routingKey") return { kind: "routingKey" };
	const match = /^header:(.+)$/.exec(raw);
	if (!match) throw new ConfigError(`KEYHIVE_KEY_FROM must be header:<name> or routingKey, got "${raw}"`);
	return { kind: "header", name: match[1] };
}

/** Every variable keyhive reads, in README's order: readConfig, the README table and its test use this one list. */
export const VARIABLES: readonly Variable[] = [
	variable({
		name: "NODEID",
		key: "nodeID",
		default: undefined,
		shown: "the hostname",
		parse: (raw) => {
			if (!/^[A-Za-z0-9._-]{1,100}$/.test(raw)) throw new ConfigError(`NODEID may hold letters, digits, '.', '_' and '-' (1 to 100), got "${raw}"`);
			return raw;
		},
		meaning:
			"Moleculer nodeID; must be unique among live nodes. With a transporter a node keeps nothing by its id (its state is in its journal), so any id will do; without one, keep it stable so a restart finds its SQLite file",
	}),
	variable({
		name: "TRANSPORTER",
		key: "transporter",
		default: undefined,
		shown: "(none: a node runs alone)",
		parse: urlList("TRANSPORTER", ["nats", "tls"]),
		meaning:
			"Moleculer transporter URL, e.g. nats://127.0.0.1:4222, or a comma-separated list of a NATS cluster's servers (credentials allowed, never logged). The NATS servers must run JetStream (`-js`): the node keeps its journal there, and stops at start with one line when it cannot",
	}),
	variable({
		name: "NAMESPACE",
		key: "namespace",
		default: "",
		shown: "(none)",
		parse: (raw) => {
			if (!/^[A-Za-z0-9._-]*$/.test(raw)) throw new ConfigError(`NAMESPACE may hold letters, digits, '.', '_' and '-', got "${raw}"`);
			return raw;
		},
		meaning: "Moleculer namespace: nodes see only peers with the same one (one cluster per namespace)",
	}),
	variable({
		name: "KEYHIVE_DATA_DIR",
		key: "dataDir",
		default: "./data",
		parse: (raw) => path.resolve(raw),
		meaning: "directory of this node's SQLite file (`<nodeID>.sqlite`)",
	}),
	variable({
		name: "KEYHIVE_REPLICAS",
		key: "replicas",
		default: "1",
		parse: integer("KEYHIVE_REPLICAS", 1, 5),
		meaning: "JetStream replicas of the journal stream; 3 with a 3-server NATS cluster (the compose file does)",
	}),
	variable({
		name: "KEYHIVE_ACTORS",
		key: "actors",
		default: "1000000",
		parse: integer("KEYHIVE_ACTORS", 0, 50_000_000),
		meaning: "number of demo actors key_1 … key_N",
	}),
	variable({
		name: "KEYHIVE_ACTOR_TIMEOUT_MS",
		key: "actorTimeoutMs",
		default: "0",
		parse: integer("KEYHIVE_ACTOR_TIMEOUT_MS", 0, 86_400_000),
		meaning: "demo actors' periodic perform interval; 0 = perform only when messages arrive",
	}),
	variable({
		name: "KEYHIVE_CONSENSUS",
		key: "consensus",
		default: "1",
		parse: integer("KEYHIVE_CONSENSUS", 1, 1000),
		meaning: "minimum members in view; below it nothing is processed",
	}),
	variable({
		name: "KEYHIVE_HEARTBEAT_INTERVAL_S",
		key: "heartbeatIntervalS",
		default: "1",
		parse: integer("KEYHIVE_HEARTBEAT_INTERVAL_S", 1, 60),
		meaning: "Moleculer heartbeat interval (seconds)",
	}),
	variable({
		name: "KEYHIVE_HEARTBEAT_TIMEOUT_S",
		key: "heartbeatTimeoutS",
		default: "2",
		parse: integer("KEYHIVE_HEARTBEAT_TIMEOUT_S", 1, 600),
		meaning: "a node silent this long is dead (looked for every 250 ms)",
	}),
	variable({
		name: "KEYHIVE_DISCOVERY_MS",
		key: "discoveryMs",
		default: "1500",
		shown: "1500 (0 without a transporter)",
		parse: integer("KEYHIVE_DISCOVERY_MS", 0, 600_000),
		meaning: "how long a starting node listens for peers before it takes any key",
	}),
	variable({
		name: "KEYHIVE_LEAVE_TIMEOUT_MS",
		key: "leaveTimeoutMs",
		default: "30000",
		parse: integer("KEYHIVE_LEAVE_TIMEOUT_MS", 0, 3_600_000),
		meaning: "longest graceful leave; what is not handed off by then stays on disk",
	}),
	variable({
		name: "KEYHIVE_RING_POINTS",
		key: "ringPoints",
		default: "160",
		parse: integer("KEYHIVE_RING_POINTS", 1, 10_000),
		meaning: "points per node on the consistent-hash ring (all nodes must agree)",
	}),
	variable({
		name: "KEYHIVE_MAX_ATTEMPTS",
		key: "maxAttempts",
		default: "5",
		parse: integer("KEYHIVE_MAX_ATTEMPTS", 1, 1000),
		meaning: "performs of one batch before its messages are dead-lettered",
	}),
	variable({
		name: "KEYHIVE_RETRY_BASE_MS",
		key: "retryBaseMs",
		default: "100",
		parse: integer("KEYHIVE_RETRY_BASE_MS", 0, 3_600_000),
		meaning: "first retry delay; doubles per attempt (capped at 30 s)",
	}),
	variable({
		name: "KEYHIVE_PERFORM_TIMEOUT_MS",
		key: "performTimeoutMs",
		default: "30000",
		parse: integer("KEYHIVE_PERFORM_TIMEOUT_MS", 1, 86_400_000),
		meaning: "a perform that has not settled by then counts as failed",
	}),
	variable({
		name: "KEYHIVE_MAX_BATCH",
		key: "maxBatch",
		default: "100",
		parse: integer("KEYHIVE_MAX_BATCH", 1, 100_000),
		meaning: "messages given to one perform at most",
	}),
	variable({
		name: "KEYHIVE_DEMO_WORK_MS",
		key: "demoWorkMs",
		default: "0",
		parse: integer("KEYHIVE_DEMO_WORK_MS", 0, 600_000),
		meaning: "demo worker only: simulated work per perform (ms), for benchmarks",
	}),
	variable({
		name: "KEYHIVE_DEDUPE_WINDOW_MS",
		key: "dedupeWindowMs",
		default: "3600000",
		parse: integer("KEYHIVE_DEDUPE_WINDOW_MS", 1000),
		meaning: "how long processed message ids are remembered to drop redeliveries",
	}),
	variable({
		name: "KEYHIVE_SHIP_BATCH",
		key: "shipBatchRows",
		default: "2000",
		parse: integer("KEYHIVE_SHIP_BATCH", 1, 100_000),
		meaning: "rows per handoff call to another node",
	}),
	variable({
		name: "AMQP_URL",
		key: "amqpUrl",
		default: "amqp://guest:guest@127.0.0.1:5672",
		parse: url("AMQP_URL", ["amqp", "amqps"]),
		meaning: "RabbitMQ URL (credentials never logged)",
	}),
	variable({ name: "KEYHIVE_QUEUE", key: "queue", default: "keyhive.inbox", parse: text, meaning: "queue consumed; its dead letters go to `<queue>.dead`" }),
	variable({
		name: "KEYHIVE_RESULTS_QUEUE",
		key: "resultsQueue",
		default: "keyhive.processed",
		parse: text,
		meaning: "durable queue the outbox publishes results to",
	}),
	variable({
		name: "KEYHIVE_KEY_FROM",
		key: "keySource",
		default: "header:key",
		parse: keySource,
		meaning: "where a message's key is: `header:<name>` or `routingKey`",
	}),
	variable({
		name: "KEYHIVE_PREFETCH",
		key: "prefetch",
		default: "1000",
		parse: integer("KEYHIVE_PREFETCH", 1, 65_535),
		meaning: "unacked deliveries the consumer may hold",
	}),
	variable({
		name: "KEYHIVE_BATCH_SIZE",
		key: "batchSize",
		default: "500",
		parse: integer("KEYHIVE_BATCH_SIZE", 1, 65_535),
		meaning: "deliveries committed per store transaction",
	}),
	variable({
		name: "KEYHIVE_BATCH_MS",
		key: "batchMs",
		default: "5",
		parse: integer("KEYHIVE_BATCH_MS", 0, 60_000),
		meaning: "longest wait to fill a delivery batch",
	}),
	variable({
		name: "KEYHIVE_HIGH_WATER",
		key: "highWater",
		default: "200000",
		parse: integer("KEYHIVE_HIGH_WATER", 1),
		meaning: "pending rows at which this node stops taking deliveries",
	}),
	variable({
		name: "KEYHIVE_LOW_WATER",
		key: "lowWater",
		default: undefined,
		shown: "half of `KEYHIVE_HIGH_WATER`",
		parse: integer("KEYHIVE_LOW_WATER", 0),
		meaning: "pending rows at which it takes deliveries again",
	}),
	variable({
		name: "KEYHIVE_MAX_KEY_LENGTH",
		key: "maxKeyLength",
		default: "256",
		parse: integer("KEYHIVE_MAX_KEY_LENGTH", 1, 65_535),
		meaning: "longer keys are dead-lettered",
	}),
	variable({
		name: "KEYHIVE_MAX_BODY_BYTES",
		key: "maxBodyBytes",
		default: "262144",
		parse: integer("KEYHIVE_MAX_BODY_BYTES", 1),
		meaning: "larger bodies are dead-lettered",
	}),
	variable({
		name: "KEYHIVE_MAX_HEADER_BYTES",
		key: "maxHeaderBytes",
		default: "16384",
		parse: integer("KEYHIVE_MAX_HEADER_BYTES", 1),
		meaning: "larger header tables are dead-lettered",
	}),
	variable({
		name: "KEYHIVE_PAYLOAD_FORMAT",
		key: "payloadFormat",
		default: "text",
		parse: (raw) => {
			if (raw !== "text" && raw !== "json") throw new ConfigError(`KEYHIVE_PAYLOAD_FORMAT must be text or json, got "${raw}"`);
			return raw;
		},
		meaning: "text (UTF-8) or json (bodies that do not parse are dead-lettered)",
	}),
	variable({
		name: "KEYHIVE_METRICS_PORT",
		key: "metricsPort",
		default: "0",
		parse: integer("KEYHIVE_METRICS_PORT", 0, 65_535),
		meaning: "Prometheus metrics port; 0 = off",
	}),
	variable({
		name: "KEYHIVE_PERFORM_LOG",
		key: "performLog",
		default: undefined,
		shown: "(off)",
		parse: text,
		meaning: "file to append one line per perform (key, node, start, end) for audits",
	}),
	variable({ name: "LOGLEVEL", key: "logLevel", default: "info", parse: text, meaning: "Moleculer log level" }),
];

/**
 * Replaces the password (or a lone token) of a URL, or of each URL of a comma-separated
 * list, with *** so it can be logged.
 */
export function redactUrl(raw: string): string {
	if (!raw.includes(",")) return redactOne(raw);
	const parts = raw.split(",");
	// A comma may also be inside a password: split only when every part is a URL of its own.
	if (parts.every((part) => /^\s*[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]/.test(part) && URL.canParse(part.trim()))) return parts.map(redactOne).join(",");
	return hideCredentials(raw);
}

function redactOne(raw: string): string {
	try {
		const url = new URL(raw);
		if (url.password) url.password = "***";
		else if (url.username) url.username = "***";
		else return raw;
		return url.toString().replace(/%2A%2A%2A/g, "***");
	} catch {
		return hideCredentials(raw);
	}
}

/** Not parseable: hide everything up to the last @, which is where credentials end. */
function hideCredentials(raw: string): string {
	return raw.replace(/(\/\/)(.*)@/, "$1***@");
}

/**
 * Not a plain object on purpose: moleculer-runner rewrites plain option objects
 * from same-named environment variables after loading the config (KEYHIVE_QUEUE=123
 * would become a number); this configuration is already read and checked.
 */
class CheckedConfig {}

export function readConfig(env: Env = process.env): KeyhiveConfig {
	const isSet = (v: Variable) => (env[v.name]?.trim() ?? "") !== "";
	const values: Record<string, unknown> = {};
	for (const v of VARIABLES) {
		const raw = isSet(v) ? env[v.name]!.trim() : v.default;
		values[v.key] = raw === undefined ? undefined : v.parse(raw);
	}
	const config = values as unknown as KeyhiveConfig;
	config.lowWater ??= Math.floor(config.highWater / 2);
	if (config.lowWater >= config.highWater) {
		throw new ConfigError(`KEYHIVE_LOW_WATER (${config.lowWater}) must be below KEYHIVE_HIGH_WATER (${config.highWater})`);
	}
	// Moleculer jitters heartbeats by up to 0.5 s and counts silence in whole seconds: a timeout
	// equal to the interval would declare live nodes gone.
	if (config.heartbeatTimeoutS < config.heartbeatIntervalS + 1) {
		throw new ConfigError(
			`KEYHIVE_HEARTBEAT_TIMEOUT_S (${config.heartbeatTimeoutS}) must be at least KEYHIVE_HEARTBEAT_INTERVAL_S + 1 (${config.heartbeatIntervalS + 1})`,
		);
	}
	// Alone, a node has no peers to wait for.
	if (!config.transporter && !isSet(VARIABLES.find((v) => v.key === "discoveryMs")!)) config.discoveryMs = 0;
	return Object.assign(new CheckedConfig(), config);
}
