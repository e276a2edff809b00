/**
 * What a perform's outcome means for the store: the return shape of a
 * successful perform (Tarearbol's meanings) turned into the commit and what
 * the runtime does next.
 * Pure: no store, no timers.
 */
import type { Commit, StoredMessage } from "../store/store";
import type { OutboxEntry } from "./perform-context";
import type { PerformResult, TerminateReason } from "./types";

/** The actor as the interpretation needs it. */
export interface ActorState {
	id: string;
	payload: unknown;
	/** Periodic perform interval in ms. */
	interval: number;
}

export interface Outcome {
	commit: Commit;
	/** What callers waiting for the messages receive. */
	result: unknown;
	/** The actor ends with this perform, for this reason. */
	removed: TerminateReason | null;
	/** The actor's new payload and interval, when the perform changed them. */
	update: { payload: unknown; interval: number } | null;
}

/** Interprets a perform's return value into what must be committed. */
export function interpretResult(actor: ActorState, value: PerformResult, rows: readonly StoredMessage[], outbox: OutboxEntry[] | null): Outcome {
	const commit: Commit = {};
	let result: unknown = value;
	let removed: TerminateReason | null = null;
	let changed = false;
	let payload = actor.payload;
	let interval = actor.interval;
	if (value === "halt") {
		removed = "halt";
		result = undefined;
		commit.actors = [{ id: actor.id, payload: actor.payload, timeout: actor.interval, deleted: true }];
	} else if (value !== null && typeof value === "object") {
		const shape = value as Record<string, unknown>;
		if ("replace" in shape) {
			result = shape.replace;
			if (typeof shape.id === "string" && shape.id !== actor.id) {
				removed = "replaced";
				commit.actors = [
					{ id: actor.id, payload: actor.payload, timeout: actor.interval, deleted: true },
					{ id: shape.id, payload: shape.replace, timeout: actor.interval, deleted: false },
				];
			} else {
				payload = shape.replace;
				changed = true;
			}
		} else if ("timeout" in shape && typeof shape.timeout === "number") {
			// Tarearbol's `{ timeout, result }`: timeout is the new periodic interval.
			interval = Math.max(0, shape.timeout);
			result = shape.result;
			changed = true;
		} else if ("ok" in shape) {
			result = shape.ok;
		}
	}
	if (changed) commit.actors = [{ id: actor.id, payload, timeout: interval, deleted: false }];
	if (rows.length > 0) commit.done = rows.map((r) => ({ id: r.id, key: r.key }));
	if (outbox) commit.outbox = outbox;
	return { commit, result, removed, update: changed ? { payload, interval } : null };
}

/** Whether a commit writes anything. */
export function isEmptyCommit(commit: Commit): boolean {
	return !commit.done && !commit.actors && !commit.outbox && !commit.dead && !commit.failed;
}
