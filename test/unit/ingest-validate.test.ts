import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ConsumeMessage } from "amqplib";
import { validateDelivery, type ValidationRules } from "../../lib/ingest/validate";

const rules: ValidationRules = {
	keySource: { kind: "header", name: "key" },
	maxKeyLength: 8,
	maxBodyBytes: 64,
	maxHeaderBytes: 200,
	payloadFormat: "text",
};

/** A delivery as amqplib hands it to a consumer (only the fields validation reads matter). */
function delivery(body: string | Buffer, properties: { headers?: Record<string, unknown>; messageId?: string } = {}, routingKey = "inbox"): ConsumeMessage {
	return {
		content: typeof body === "string" ? Buffer.from(body) : body,
		fields: { deliveryTag: 1, redelivered: false, exchange: "", routingKey, consumerTag: "test" },
		properties: { headers: properties.headers, messageId: properties.messageId },
	} as unknown as ConsumeMessage;
}

function reasonOf(d: ConsumeMessage, r: ValidationRules = rules): string | undefined {
	const result = validateDelivery(d, r);
	return "reason" in result ? result.reason : undefined;
}

function messageOf(d: ConsumeMessage, r: ValidationRules = rules) {
	const result = validateDelivery(d, r);
	assert.ok("message" in result, `expected a message, got ${JSON.stringify(result)}`);
	return result.message;
}

describe("validateDelivery", () => {
	it("accepts a keyed text message and keeps its messageId", () => {
		const m = messageOf(delivery("hello", { headers: { key: "k1" }, messageId: "m-1" }));
		assert.deepEqual(m, { id: "m-1", key: "k1", payload: "hello", headers: null });
	});

	it("refuses a message without its key header: missing-key", () => {
		assert.equal(reasonOf(delivery("x", { headers: { other: "k" } })), "missing-key");
		assert.equal(reasonOf(delivery("x")), "missing-key");
		assert.equal(reasonOf(delivery("x", { headers: { key: Buffer.from("k") } })), "missing-key");
	});

	it("takes a numeric key header as its decimal string", () => {
		assert.equal(messageOf(delivery("x", { headers: { key: 42 } })).key, "42");
	});

	it("refuses an empty or blank key: empty-key", () => {
		assert.equal(reasonOf(delivery("x", { headers: { key: "" } })), "empty-key");
		assert.equal(reasonOf(delivery("x", { headers: { key: "  " } })), "empty-key");
	});

	it("refuses a key longer than maxKeyLength: key-too-long", () => {
		assert.equal(reasonOf(delivery("x", { headers: { key: "123456789" } })), "key-too-long");
		assert.equal(messageOf(delivery("x", { headers: { key: "12345678" } })).key, "12345678");
	});

	it("refuses a body larger than maxBodyBytes: body-too-large", () => {
		assert.equal(reasonOf(delivery("a".repeat(65), { headers: { key: "k" } })), "body-too-large");
		assert.equal(messageOf(delivery("a".repeat(64), { headers: { key: "k" } })).payload.length, 64);
	});

	it("refuses headers whose JSON is larger than maxHeaderBytes: headers-too-large", () => {
		assert.equal(reasonOf(delivery("x", { headers: { key: "k", big: "b".repeat(200) } })), "headers-too-large");
	});

	it("refuses bytes that are not UTF-8: undecodable-payload", () => {
		assert.equal(reasonOf(delivery(Buffer.from([0x68, 0xff, 0xfe]), { headers: { key: "k" } })), "undecodable-payload");
	});

	it("in json format also refuses text that does not parse: undecodable-payload", () => {
		const json: ValidationRules = { ...rules, payloadFormat: "json" };
		assert.equal(reasonOf(delivery("{not json", { headers: { key: "k" } }), json), "undecodable-payload");
		assert.equal(messageOf(delivery('{"n":1}', { headers: { key: "k" } }), json).payload, '{"n":1}');
		// Text format takes the same body as it is.
		assert.equal(messageOf(delivery("{not json", { headers: { key: "k" } })).payload, "{not json");
	});

	it("reads the key from the routing key when configured", () => {
		const byRoutingKey: ValidationRules = { ...rules, keySource: { kind: "routingKey" } };
		assert.equal(messageOf(delivery("x", {}, "k7"), byRoutingKey).key, "k7");
		assert.equal(reasonOf(delivery("x", {}, ""), byRoutingKey), "empty-key");
	});

	it("derives a stable id from key and body when there is no messageId", () => {
		const a = messageOf(delivery("body", { headers: { key: "k" } }));
		const again = messageOf(delivery("body", { headers: { key: "k", extra: 1 } }));
		const otherKey = messageOf(delivery("body", { headers: { key: "k2" } }));
		const otherBody = messageOf(delivery("body2", { headers: { key: "k" } }));
		assert.match(a.id, /^sha256:[0-9a-f]{64}$/);
		assert.equal(again.id, a.id, "a redelivery (headers may differ) gets the same id");
		assert.notEqual(otherKey.id, a.id);
		assert.notEqual(otherBody.id, a.id);
		// key + "\0" + body: moving a byte from key to body changes the id.
		assert.notEqual(messageOf(delivery("bc", { headers: { key: "a" } })).id, messageOf(delivery("c", { headers: { key: "ab" } })).id);
		// An empty messageId counts as none.
		assert.equal(messageOf(delivery("body", { headers: { key: "k" }, messageId: "" })).id, a.id);
	});

	it("stores headers without the key header, as strings, numbers and booleans", () => {
		const m = messageOf(
			delivery("x", {
				headers: {
					key: "k",
					s: "text",
					n: 7,
					f: 1.5,
					b: false,
					at: { "!": "timestamp", value: 1700000000 },
					price: { "!": "decimal", value: { places: 2, digits: 1234 } },
					bytes: Buffer.from("raw"),
					list: [1, 2],
					table: { a: 1 },
					nothing: null,
				},
			}),
			{ ...rules, maxHeaderBytes: 10_000 },
		);
		assert.deepEqual(m.headers, { s: "text", n: 7, f: 1.5, b: false, at: 1700000000, price: 12.34 });
	});
});
