/**
 * What a perform sees besides its messages: the node, the attempt, and an
 * outbox that is committed with the perform or not at all.
 */
import type { Headers } from "../store/store";
import type { PerformContext } from "./types";

export interface OutboxEntry {
	body: string;
	headers?: Headers | null;
}

export class Context implements PerformContext {
	readonly node: string;
	readonly attempt: number;
	/** When the perform started (ms); names the results of a periodic perform. */
	readonly startedAt: number;
	outbox: OutboxEntry[] | null = null;

	constructor(node: string, attempt: number, startedAt: number) {
		this.node = node;
		this.attempt = attempt;
		this.startedAt = startedAt;
	}

	publish(body: unknown, headers?: Headers): void {
		(this.outbox ??= []).push({ body: JSON.stringify(body ?? null), headers: headers ?? null });
	}
}
