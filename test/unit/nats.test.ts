import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isNatsAuthError, natsAuthMessage, natsOptions } from "../../lib/nats";

describe("natsOptions", () => {
	it("decodes user and password, and defaults the port", () => {
		assert.deepEqual(natsOptions("nats://keyhive:p%40ss%2Fw0rd@10.0.0.5"), { servers: ["10.0.0.5:4222"], user: "keyhive", pass: "p@ss/w0rd" });
	});
	it("sends a lone user part as a token", () => {
		assert.deepEqual(natsOptions("nats://s3cr3t@nats:4333"), { servers: ["nats:4333"], token: "s3cr3t" });
	});
	it("requires TLS for tls://", () => {
		assert.deepEqual(natsOptions("tls://nats:4222"), { servers: ["nats:4222"], tls: {} });
	});
	it("gives every server of a comma-separated TRANSPORTER, in order, with the credentials once", () => {
		assert.deepEqual(natsOptions("nats://127.0.0.1:14221,nats://127.0.0.1:14222,nats://127.0.0.1:14223"), {
			servers: ["127.0.0.1:14221", "127.0.0.1:14222", "127.0.0.1:14223"],
		});
		assert.deepEqual(natsOptions("nats://nats-1:4222, nats://nats-2 ,nats://nats-3:4333"), { servers: ["nats-1:4222", "nats-2:4222", "nats-3:4333"] });
		assert.deepEqual(natsOptions("tls://k:p%40ss@a:4222,tls://k:p%40ss@b:4222"), { servers: ["a:4222", "b:4222"], user: "k", pass: "p@ss", tls: {} });
		assert.deepEqual(natsOptions("nats://tok@a,nats://tok@b"), { servers: ["a:4222", "b:4222"], token: "tok" });
	});
	it("tells an authorization error from others, and never shows the password", () => {
		assert.equal(isNatsAuthError({ code: "AUTHORIZATION_VIOLATION" }), true);
		assert.equal(isNatsAuthError({ code: "CONNECTION_REFUSED" }), false);
		assert.equal(isNatsAuthError(null), false);
		const line = natsAuthMessage("nats://keyhive:topsecret@nats:4222", new Error("'Authorization Violation'"));
		assert.ok(!line.includes("topsecret"));
		assert.match(line, /keyhive:\*\*\*@nats:4222.*Authorization Violation/);
		const cluster = natsAuthMessage("nats://keyhive:topsecret@nats-1:4222,nats://keyhive:topsecret@nats-2:4222", new Error("x"));
		assert.ok(!cluster.includes("topsecret"), cluster);
		assert.match(cluster, /keyhive:\*\*\*@nats-1:4222,nats:\/\/keyhive:\*\*\*@nats-2:4222/);
	});
});
