/**
 * What a perform sees besides its messages: the node, the attempt, and an
 * outbox that is committed with the perform or not at all.
 */
import type { Headers } from "../store/store";
import type { PerformContext } from "./types";

export interface OutboxEntry {
	/** The actor's key: its results move with it until published. */
	key: string;
	body: string;
	headers?: Headers | null;
}

export class Context implements PerformContext {
	readonly node: string;
	readonly attempt: number;
	/** When the perform started (ms); names the results of a periodic perform. */
	readonly startedAt: number;
	private readonly key: string;
	outbox: OutboxEntry[] | null = null;

	constructor(node: string, attempt: number, startedAt: number, key: string) {
		this.node = node;
		this.attempt = attempt;
		this.startedAt = startedAt;
		this.key = key;
	}

	publish(body: unknown, headers?: Headers): void {
		(this.outbox ??= []).push({ key: this.key, body: JSON.stringify(body ?? null), headers: headers ?? null });
	}
}
