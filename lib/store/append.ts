/**
 * Messages entering through an action (the REPL, tests, an application)
 * rather than RabbitMQ: checked here, so a bad call gets a clear error.
 */
import { randomUUID } from "crypto";
import type { Headers, NewMessage } from "./store";

export interface AppendMessage {
	key: string;
	payload?: unknown;
	id?: string;
	headers?: Headers;
}

export type AppendParams = AppendMessage | { messages: AppendMessage[] };

export class AppendError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "AppendError";
	}
}

function toNewMessage(m: AppendMessage, index: number): NewMessage {
	const where = `message ${index}`;
	if (m === null || typeof m !== "object") throw new AppendError(`${where}: expected an object with key and payload`);
	if (typeof m.key !== "string" || m.key.length === 0) throw new AppendError(`${where}: key must be a non-empty string`);
	if (m.id !== undefined && (typeof m.id !== "string" || m.id.length === 0)) throw new AppendError(`${where}: id must be a non-empty string`);
	if (m.headers !== undefined && (m.headers === null || typeof m.headers !== "object" || Array.isArray(m.headers))) {
		throw new AppendError(`${where}: headers must be an object`);
	}
	const payload = typeof m.payload === "string" ? m.payload : JSON.stringify(m.payload ?? null);
	return { id: m.id ?? randomUUID(), key: m.key, payload, headers: m.headers ?? null };
}

export function validateAppend(params: AppendParams): NewMessage[] {
	const list = "messages" in params ? params.messages : [params];
	if (!Array.isArray(list)) throw new AppendError("messages must be an array");
	return list.map(toNewMessage);
}
