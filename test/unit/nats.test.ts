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
	it("tells an authorization error from others, and never shows the password", () => {
		assert.equal(isNatsAuthError({ code: "AUTHORIZATION_VIOLATION" }), true);
		assert.equal(isNatsAuthError({ code: "CONNECTION_REFUSED" }), false);
		assert.equal(isNatsAuthError(null), false);
		const line = natsAuthMessage("nats://keyhive:topsecret@nats:4222", new Error("'Authorization Violation'"));
		assert.ok(!line.includes("topsecret"));
		assert.match(line, /keyhive:\*\*\*@nats:4222.*Authorization Violation/);
	});
});
