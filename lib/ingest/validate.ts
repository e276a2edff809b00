/**
 * Turns one AMQP delivery into a message for the store, or into the reason it
 * is refused. Pure: no I/O, no clock, the same delivery always gives the same answer.
 */
import { createHash } from "crypto";
import type { ConsumeMessage } from "amqplib";
import type { KeyhiveConfig } from "../config";
import type { Headers, NewMessage } from "../store/store";

/** Stable, machine-readable reasons; they travel in the dead letter's `x-keyhive-reason` header. */
export type RejectReason = "missing-key" | "empty-key" | "key-too-long" | "body-too-large" | "headers-too-large" | "undecodable-payload";

export type Validation = { message: NewMessage } | { reason: RejectReason };

export type ValidationRules = Pick<KeyhiveConfig, "keySource" | "maxKeyLength" | "maxBodyBytes" | "maxHeaderBytes" | "payloadFormat">;

type AmqpHeaders = Record<string, unknown>;

/** Fatal: bytes that are not UTF-8 throw instead of turning into U+FFFD. Reusable: decode() without stream keeps no state. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

export function validateDelivery(delivery: ConsumeMessage, rules: ValidationRules): Validation {
	const amqpHeaders: AmqpHeaders = delivery.properties.headers ?? {};

	const key = keyOf(delivery, amqpHeaders, rules);
	if (key === undefined) return { reason: "missing-key" };
	// A key of only blanks is as useless for routing as no key at all.
	if (key.trim() === "") return { reason: "empty-key" };
	if (key.length > rules.maxKeyLength) return { reason: "key-too-long" };

	if (delivery.content.length > rules.maxBodyBytes) return { reason: "body-too-large" };
	if (headerBytes(amqpHeaders) > rules.maxHeaderBytes) return { reason: "headers-too-large" };

	const payload = decodePayload(delivery.content, rules.payloadFormat);
	if (payload === undefined) return { reason: "undecodable-payload" };

	const keyHeader = rules.keySource.kind === "header" ? rules.keySource.name : undefined;
	return {
		message: {
			id: messageIdOf(delivery, key),
			key,
			payload,
			headers: storableHeaders(amqpHeaders, keyHeader),
		},
	};
}

/** The key as a string; undefined when the configured source holds nothing usable. */
function keyOf(delivery: ConsumeMessage, headers: AmqpHeaders, rules: ValidationRules): string | undefined {
	if (rules.keySource.kind === "routingKey") return delivery.fields.routingKey;
	const value = headers[rules.keySource.name];
	if (typeof value === "string") return value;
	if (typeof value === "number" && Number.isFinite(value)) return String(value);
	return undefined;
}

/** Size of the headers as JSON; a table that cannot be written as JSON counts as too large. */
function headerBytes(headers: AmqpHeaders): number {
	try {
		return Buffer.byteLength(JSON.stringify(headers));
	} catch {
		return Number.POSITIVE_INFINITY;
	}
}

function decodePayload(body: Buffer, format: ValidationRules["payloadFormat"]): string | undefined {
	let text: string;
	try {
		text = utf8.decode(body);
	} catch {
		return undefined;
	}
	if (format === "json") {
		try {
			JSON.parse(text);
		} catch {
			return undefined;
		}
	}
	return text;
}

/**
 * The producer's messageId when it gave one. Otherwise an id derived from the
 * content, so a redelivery of the same message gets the same id and the store's
 * dedupe drops it. The price: two identical bodies sent to one key without ids
 * are indistinguishable and collapse into one message.
 */
export function messageIdOf(delivery: ConsumeMessage, key: string): string {
	const given = delivery.properties.messageId;
	if (typeof given === "string" && given !== "") return given;
	const hash = createHash("sha256").update(key, "utf8").update("\0").update(delivery.content).digest("hex");
	return `sha256:${hash}`;
}

/** AMQP headers minus the key header, as the store's flat string|number|boolean map; null when none is left. */
function storableHeaders(headers: AmqpHeaders, keyHeader: string | undefined): Headers | null {
	const kept: Headers = {};
	let count = 0;
	for (const [name, value] of Object.entries(headers)) {
		if (name === keyHeader) continue;
		const converted = scalarOf(value);
		if (converted === undefined) continue;
		kept[name] = converted;
		count++;
	}
	return count > 0 ? kept : null;
}

/** amqplib decodes timestamps and decimals as tagged objects; byte arrays, tables, arrays and void are dropped. */
function scalarOf(value: unknown): string | number | boolean | undefined {
	if (typeof value === "string" || typeof value === "boolean") return value;
	if (typeof value === "number") return Number.isFinite(value) ? value : undefined;
	if (typeof value === "bigint") return value.toString();
	if (isTagged(value, "timestamp") && typeof value.value === "number") return value.value;
	if (isTagged(value, "decimal")) {
		const { places, digits } = value.value as { places: number; digits: number };
		return digits / 10 ** places;
	}
	return undefined;
}

function isTagged(value: unknown, tag: string): value is { "!": string; value: unknown } {
	return typeof value === "object" && value !== null && !Buffer.isBuffer(value) && (value as { "!"?: unknown })["!"] === tag;
}
