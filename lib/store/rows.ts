/** The store's tables as SQLite returns their rows, and what the store makes of them. */
import type { ActorRecord, DeadMessage, Headers, OutboxEntry, ShippedResult, StoredMessage } from "./types";

export interface MessageRow {
	seq: number;
	id: string;
	key: string;
	stamp: number;
	payload: string;
	headers: string | null;
	received_at: number;
	attempts: number;
}

export interface OutboxRow {
	seq: number;
	uid: string;
	key: string;
	body: string;
	headers: string | null;
	created_at: number;
}

export type ActorRow = { id: string; payload: string | null; timeout: number; deleted: number; version: number };
export type DeadRow = MessageRow & { reason: string; died_at: number };

export function parseHeaders(json: string | null): Headers | null {
	return json === null ? null : (JSON.parse(json) as Headers);
}

export function toMessage(row: MessageRow): StoredMessage {
	return {
		seq: row.seq,
		id: row.id,
		key: row.key,
		stamp: row.stamp,
		payload: row.payload,
		headers: parseHeaders(row.headers),
		receivedAt: row.received_at,
		attempts: row.attempts,
	};
}

export function toShippedMessage(row: MessageRow): Omit<StoredMessage, "seq"> {
	const { seq: _seq, ...message } = toMessage(row);
	return message;
}

export function toShippedDead(row: DeadRow): Omit<DeadMessage, "seq"> {
	return { ...toShippedMessage(row), reason: row.reason, diedAt: row.died_at };
}

export function toShippedOutbox(row: OutboxRow): ShippedResult {
	return { uid: row.uid, key: row.key, body: row.body, headers: parseHeaders(row.headers), createdAt: row.created_at };
}

export function toOutboxEntry(row: OutboxRow): OutboxEntry {
	return { seq: row.seq, uid: row.uid, key: row.key, body: row.body, headers: parseHeaders(row.headers) };
}

export function toActor(row: ActorRow): ActorRecord {
	return { id: row.id, payload: row.payload === null ? null : JSON.parse(row.payload), timeout: row.timeout, deleted: row.deleted === 1, version: row.version };
}
