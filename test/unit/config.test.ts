import assert from "node:assert/strict";
import * as path from "path";
import { describe, it } from "node:test";
import { ConfigError, readConfig, redactUrl, VARIABLES } from "../../lib/config";

/** readConfig must throw a ConfigError whose message names the variable. */
function rejects(env: Record<string, string>, variable: string, also?: RegExp): string {
	let error: unknown;
	try {
		readConfig(env);
	} catch (err) {
		error = err;
	}
	assert.ok(error instanceof ConfigError, `expected a ConfigError for ${JSON.stringify(env)}, got ${String(error)}`);
	const message = (error as Error).message;
	assert.ok(message.includes(variable), `"${message}" does not name ${variable}`);
	if (also) assert.match(message, also);
	return message;
}

describe("readConfig defaults", () => {
	it("an empty environment gives the documented defaults", () => {
		const c = readConfig({});
		assert.equal(c.nodeID, undefined);
		assert.equal(c.transporter, undefined);
		assert.equal(c.dataDir, path.resolve("./data"));
		assert.equal(c.replicas, 1);
		assert.equal(c.actors, 1_000_000);
		assert.equal(c.actorTimeoutMs, 0);
		assert.equal(c.consensus, 1);
		assert.equal(c.heartbeatIntervalS, 1);
		assert.equal(c.heartbeatTimeoutS, 2);
		assert.equal(c.discoveryMs, 0, "no transporter: a node runs alone and need not listen for peers");
		assert.equal(c.leaveTimeoutMs, 30_000);
		assert.equal(c.ringPoints, 160);
		assert.equal(c.maxAttempts, 5);
		assert.equal(c.retryBaseMs, 100);
		assert.equal(c.performTimeoutMs, 30_000);
		assert.equal(c.dedupeWindowMs, 3_600_000);
		assert.equal(c.shipBatchRows, 2000);
		assert.equal(c.amqpUrl, "amqp://guest:guest@127.0.0.1:5672");
		assert.equal(c.queue, "keyhive.inbox");
		assert.equal(c.resultsQueue, "keyhive.processed");
		assert.deepEqual(c.keySource, { kind: "header", name: "key" });
		assert.equal(c.prefetch, 1000);
		assert.equal(c.batchSize, 500);
		assert.equal(c.batchMs, 5);
		assert.equal(c.highWater, 200_000);
		assert.equal(c.lowWater, 100_000);
		assert.equal(c.maxKeyLength, 256);
		assert.equal(c.maxBodyBytes, 262_144);
		assert.equal(c.maxHeaderBytes, 16_384);
		assert.equal(c.payloadFormat, "text");
		assert.equal(c.metricsPort, 0);
		assert.equal(c.performLog, undefined);
		assert.equal(c.logLevel, "info");
	});

	it("blank values count as unset", () => {
		const c = readConfig({ KEYHIVE_ACTORS: "  ", NODEID: " ", TRANSPORTER: "", KEYHIVE_PAYLOAD_FORMAT: "" });
		assert.equal(c.actors, 1_000_000);
		assert.equal(c.nodeID, undefined);
		assert.equal(c.transporter, undefined);
		assert.equal(c.payloadFormat, "text");
	});

	it("reads set values, trimmed", () => {
		const c = readConfig({
			NODEID: "keyhive-1",
			TRANSPORTER: " nats://127.0.0.1:4222 ",
			KEYHIVE_ACTORS: " 42 ",
			KEYHIVE_KEY_FROM: "routingKey",
			KEYHIVE_PAYLOAD_FORMAT: "json",
			KEYHIVE_HIGH_WATER: "10",
			KEYHIVE_PERFORM_LOG: " /tmp/perform.log ",
			KEYHIVE_DATA_DIR: "/var/lib/keyhive",
		});
		assert.equal(c.nodeID, "keyhive-1");
		assert.equal(c.transporter, "nats://127.0.0.1:4222");
		assert.equal(c.discoveryMs, 1500, "with a transporter a node listens for peers first");
		assert.equal(c.actors, 42);
		assert.deepEqual(c.keySource, { kind: "routingKey" });
		assert.equal(c.payloadFormat, "json");
		assert.equal(c.highWater, 10);
		assert.equal(c.lowWater, 5, "low water defaults to half of high water");
		assert.equal(c.performLog, "/tmp/perform.log");
		assert.equal(c.dataDir, "/var/lib/keyhive");
		assert.deepEqual(readConfig({ KEYHIVE_KEY_FROM: "header:x-routing" }).keySource, { kind: "header", name: "x-routing" });
		assert.equal(readConfig({ TRANSPORTER: "tls://nats.example:4222" }).transporter, "tls://nats.example:4222");
		assert.equal(readConfig({ AMQP_URL: "amqps://u:p@rabbit:5671/vh" }).amqpUrl, "amqps://u:p@rabbit:5671/vh");
	});

	it("bounds are inclusive", () => {
		assert.equal(readConfig({ KEYHIVE_CONSENSUS: "1" }).consensus, 1);
		assert.equal(readConfig({ KEYHIVE_CONSENSUS: "1000" }).consensus, 1000);
		assert.equal(readConfig({ KEYHIVE_ACTORS: "0" }).actors, 0);
		assert.equal(readConfig({ KEYHIVE_METRICS_PORT: "65535" }).metricsPort, 65535);
		assert.equal(readConfig({ KEYHIVE_HIGH_WATER: "1" }).lowWater, 0);
	});

	it("an unset variable takes the default VARIABLES gives for it (README shows the same)", () => {
		const config = readConfig({ TRANSPORTER: "nats://127.0.0.1:4222" });
		for (const v of VARIABLES) {
			if (v.name === "TRANSPORTER") continue;
			const applied = v.default === undefined ? undefined : v.parse(v.default);
			if (v.key === "lowWater") assert.equal(config.lowWater, config.highWater / 2, "KEYHIVE_LOW_WATER defaults to half of KEYHIVE_HIGH_WATER");
			else assert.deepEqual(config[v.key], applied, `${v.name} defaults to ${v.default}`);
			if (v.shown === undefined) assert.notEqual(v.default, undefined, `${v.name} shows a default`);
		}
		assert.equal(readConfig({}).discoveryMs, 0, "KEYHIVE_DISCOVERY_MS is 0 without a transporter, as its shown default says");
	});

	it("every variable readConfig reads is documented in VARIABLES", () => {
		const names = new Set(VARIABLES.map((v) => v.name));
		for (const name of [
			"NODEID",
			"TRANSPORTER",
			"KEYHIVE_DATA_DIR",
			"KEYHIVE_CONSENSUS",
			"KEYHIVE_HIGH_WATER",
			"KEYHIVE_LOW_WATER",
			"AMQP_URL",
			"KEYHIVE_KEY_FROM",
			"KEYHIVE_PAYLOAD_FORMAT",
			"LOGLEVEL",
		]) {
			assert.ok(names.has(name), `${name} missing from VARIABLES`);
		}
		assert.equal(names.size, VARIABLES.length, "a variable is listed twice");
	});
});

describe("readConfig validation names the variable", () => {
	it("bad integers", () => {
		rejects({ KEYHIVE_ACTORS: "many" }, "KEYHIVE_ACTORS", /whole number/);
		rejects({ KEYHIVE_PREFETCH: "1.5" }, "KEYHIVE_PREFETCH", /whole number/);
		rejects({ KEYHIVE_BATCH_SIZE: "1e3" }, "KEYHIVE_BATCH_SIZE", /whole number/);
		rejects({ KEYHIVE_RING_POINTS: "0x10" }, "KEYHIVE_RING_POINTS");
		rejects({ KEYHIVE_MAX_ATTEMPTS: "5 tries" }, "KEYHIVE_MAX_ATTEMPTS");
	});

	it("out of range", () => {
		rejects({ KEYHIVE_CONSENSUS: "0" }, "KEYHIVE_CONSENSUS", /between 1 and 1000/);
		rejects({ KEYHIVE_CONSENSUS: "1001" }, "KEYHIVE_CONSENSUS");
		rejects({ KEYHIVE_ACTORS: "-1" }, "KEYHIVE_ACTORS");
		rejects({ KEYHIVE_METRICS_PORT: "65536" }, "KEYHIVE_METRICS_PORT");
		rejects({ KEYHIVE_PERFORM_TIMEOUT_MS: "0" }, "KEYHIVE_PERFORM_TIMEOUT_MS");
		rejects({ KEYHIVE_DEDUPE_WINDOW_MS: "999" }, "KEYHIVE_DEDUPE_WINDOW_MS");
		rejects({ KEYHIVE_HEARTBEAT_INTERVAL_S: "61" }, "KEYHIVE_HEARTBEAT_INTERVAL_S");
		rejects({ KEYHIVE_HIGH_WATER: "99999999999999999999999" }, "KEYHIVE_HIGH_WATER");
	});

	it("low water at or above high water", () => {
		rejects({ KEYHIVE_HIGH_WATER: "100", KEYHIVE_LOW_WATER: "100" }, "KEYHIVE_LOW_WATER", /KEYHIVE_HIGH_WATER/);
		rejects({ KEYHIVE_HIGH_WATER: "100", KEYHIVE_LOW_WATER: "150" }, "KEYHIVE_LOW_WATER");
		rejects({ KEYHIVE_LOW_WATER: "200000" }, "KEYHIVE_LOW_WATER", /200000/);
		assert.equal(readConfig({ KEYHIVE_HIGH_WATER: "100", KEYHIVE_LOW_WATER: "99" }).lowWater, 99);
	});

	it("heartbeat timeout below the interval", () => {
		rejects({ KEYHIVE_HEARTBEAT_INTERVAL_S: "5", KEYHIVE_HEARTBEAT_TIMEOUT_S: "4" }, "KEYHIVE_HEARTBEAT_TIMEOUT_S");
		rejects({ KEYHIVE_HEARTBEAT_INTERVAL_S: "2", KEYHIVE_HEARTBEAT_TIMEOUT_S: "2" }, "KEYHIVE_HEARTBEAT_TIMEOUT_S");
	});

	it("bad URL scheme or not a URL", () => {
		rejects({ TRANSPORTER: "redis://127.0.0.1:6379" }, "TRANSPORTER", /nats/);
		rejects({ TRANSPORTER: "not a url" }, "TRANSPORTER", /not a URL/);
		rejects({ AMQP_URL: "http://guest:guest@127.0.0.1:15672" }, "AMQP_URL", /amqp/);
		rejects({ AMQP_URL: "127.0.0.1:5672" }, "AMQP_URL");
	});

	it("bad KEYHIVE_REPLICAS", () => {
		rejects({ KEYHIVE_REPLICAS: "0" }, "KEYHIVE_REPLICAS", /between 1 and 5/);
		rejects({ KEYHIVE_REPLICAS: "6" }, "KEYHIVE_REPLICAS", /between 1 and 5/);
		rejects({ KEYHIVE_REPLICAS: "three" }, "KEYHIVE_REPLICAS", /whole number/);
		assert.equal(readConfig({ KEYHIVE_REPLICAS: " 3 " }).replicas, 3);
		assert.equal(readConfig({ KEYHIVE_REPLICAS: "5" }).replicas, 5);
	});

	it("bad KEYHIVE_KEY_FROM", () => {
		rejects({ KEYHIVE_KEY_FROM: "header:" }, "KEYHIVE_KEY_FROM");
		rejects({ KEYHIVE_KEY_FROM: "body" }, "KEYHIVE_KEY_FROM", /header:<name> or routingKey/);
		rejects({ KEYHIVE_KEY_FROM: "routingkey" }, "KEYHIVE_KEY_FROM");
	});

	it("bad NODEID", () => {
		rejects({ NODEID: "node 1" }, "NODEID");
		rejects({ NODEID: "node/1" }, "NODEID");
		rejects({ NODEID: "x".repeat(101) }, "NODEID");
		assert.equal(readConfig({ NODEID: "x".repeat(100) }).nodeID, "x".repeat(100));
	});

	it("bad payload format", () => {
		rejects({ KEYHIVE_PAYLOAD_FORMAT: "xml" }, "KEYHIVE_PAYLOAD_FORMAT", /text or json/);
		rejects({ KEYHIVE_PAYLOAD_FORMAT: "JSON" }, "KEYHIVE_PAYLOAD_FORMAT");
	});

	it("TRANSPORTER may list the servers of one NATS cluster, each checked", () => {
		const three = "nats://127.0.0.1:14221,nats://127.0.0.1:14222,nats://127.0.0.1:14223";
		assert.equal(readConfig({ TRANSPORTER: three }).transporter, three);
		assert.equal(readConfig({ TRANSPORTER: " nats://a:4222 , nats://b:4222 " }).transporter, "nats://a:4222,nats://b:4222", "blanks around commas dropped");
		const secured = "tls://u:p%2Cw@a:4222,tls://u:p%2Cw@b:4222";
		assert.equal(readConfig({ TRANSPORTER: secured }).transporter, secured);
		rejects({ TRANSPORTER: "nats://a:4222,redis://b:6379" }, "TRANSPORTER", /nats/);
		rejects({ TRANSPORTER: "nats://a:4222,b:4222" }, "TRANSPORTER");
		rejects({ TRANSPORTER: "nats://a:4222,,nats://b:4222" }, "TRANSPORTER");
		rejects({ TRANSPORTER: "nats://a:4222," }, "TRANSPORTER");
		rejects({ TRANSPORTER: "nats://a:4222,tls://b:4222" }, "TRANSPORTER", /same scheme/);
		const other = rejects({ TRANSPORTER: "nats://u:s3cr3t@a:4222,nats://u:other@b:4222" }, "TRANSPORTER", /same credentials/);
		assert.ok(!other.includes("s3cr3t") && !other.includes("other@"), other);
		rejects({ TRANSPORTER: "nats://u:p@a:4222,nats://b:4222" }, "TRANSPORTER", /same credentials/);
	});

	it("a comma inside a TRANSPORTER password is refused without showing the password", () => {
		for (const raw of ["nats://u:12,s3cr3t@a:4222", "nats://u:x,s3cr3t:y@a:4222", "nats://u:1,s3cr3t@a:4222,nats://u:1,s3cr3t@b:4222"]) {
			const message = rejects({ TRANSPORTER: raw }, "TRANSPORTER", /%2C/);
			assert.ok(!message.includes("s3cr3t"), message);
		}
	});

	it("an error about a URL never shows its password", () => {
		const message = rejects({ AMQP_URL: "https://admin:s3cr3t@rabbit:5672" }, "AMQP_URL");
		assert.ok(!message.includes("s3cr3t"), message);
		const notUrl = rejects({ TRANSPORTER: "nats//admin:s3cr3t@nats" }, "TRANSPORTER");
		assert.ok(!notUrl.includes("s3cr3t"), notUrl);
	});

	it("an unparsable URL whose password holds '/' is not echoed with its password", () => {
		const message = rejects({ AMQP_URL: "amqp://admin:se/cr3t@rabbit:5672" }, "AMQP_URL");
		assert.ok(!message.includes("cr3t"), message);
	});
});

describe("redactUrl", () => {
	it("hides passwords and tokens, keeps the rest", () => {
		assert.equal(redactUrl("nats://user:pass@h"), "nats://user:***@h");
		assert.equal(redactUrl("amqp://guest:guest@h:5672"), "amqp://guest:***@h:5672");
		assert.equal(redactUrl("nats://token@h"), "nats://***@h");
		assert.equal(redactUrl("amqps://u:secret@rabbit:5671/vhost"), "amqps://u:***@rabbit:5671/vhost");
	});

	it("redacts every URL of a comma-separated list, and hides a password holding a comma", () => {
		assert.equal(redactUrl("nats://u:p@a:1,nats://u:p@b:2"), "nats://u:***@a:1,nats://u:***@b:2");
		assert.equal(redactUrl("nats://t@a:1,nats://t@b:2"), "nats://***@a:1,nats://***@b:2");
		assert.equal(redactUrl("nats://a:1,nats://b:2"), "nats://a:1,nats://b:2");
		for (const raw of ["nats://u:12,s3cr3t@h:4222", "nats://u:x,s3cr3t:y@h", "nats://u:1,s3cr3t@a,nats://u:1,s3cr3t@b"]) {
			assert.ok(!redactUrl(raw).includes("s3cr3t"), `${raw} -> ${redactUrl(raw)}`);
		}
	});

	it("leaves URLs without credentials alone", () => {
		assert.equal(redactUrl("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
		assert.equal(redactUrl("amqp://rabbit/vhost@odd"), "amqp://rabbit/vhost@odd");
	});

	it("hides a password that contains '@' (WHATWG URL takes the last '@' as the end of the credentials)", () => {
		const raw = "nats://user:p@ssw0rd@host:4222";
		assert.equal(new URL(raw).password, "p%40ssw0rd", "readConfig accepts this URL");
		const redacted = redactUrl(raw);
		assert.ok(!redacted.includes("ssw0rd"), redacted);
		assert.equal(redacted, "nats://user:***@host:4222");
	});
});
