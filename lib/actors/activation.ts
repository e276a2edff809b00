/**
 * Activation after a settle: whether the settle can give this node keys, and
 * spawning the actors it owns and does not hold yet, stored state first, then
 * the application's specs. A million specs take longer than a heartbeat, so
 * the walk yields every SLICE_MS.
 */
import type { Store } from "../store/store";
import type { View } from "../topology/topology";
import type { ActorBehaviour, ActorSpec } from "./types";

/** Longest stretch a long loop (activation) holds the event loop: well under the heartbeat timeout, long enough to keep locality. */
const SLICE_MS = 200;

/** What activation needs from the runtime. */
export interface ActivationHost {
	readonly store: Store;
	readonly behaviour: ActorBehaviour;
	/** Periodic interval of specs that name none. */
	readonly defaultInterval: number;
	holds(id: string): boolean;
	/** Whether the actor was deleted after the walk began (its tombstone is newer than the walk's read of the store). */
	deletedDuringWalk(id: string): boolean;
	owns(id: string): boolean;
	/** Whether view is still the runtime's view and it has not stopped. */
	isCurrent(view: View): boolean;
	spawn(id: string, payload: unknown, interval: number): void;
}

/** Spawns owned actors not held yet; false when the view changed or the runtime stopped meanwhile. */
export async function activateOwned(host: ActivationHost, view: View): Promise<boolean> {
	// Read whole: a better-sqlite3 iterator left open across a yield would block the store.
	const records = [...host.store.actors()];
	const tombstones = new Set<string>();
	const slice = new TimeSlice();
	for (const record of records) {
		if (slice.due() && !(await yieldFor(host, view, slice))) return false;
		if (host.holds(record.id) || !host.owns(record.id)) continue;
		if (record.deleted) tombstones.add(record.id);
		else host.spawn(record.id, record.payload, record.timeout);
	}
	const specs = host.behaviour.childrenSpecs ? await host.behaviour.childrenSpecs() : [];
	if (!host.isCurrent(view)) return false;
	for (const spec of specs as Iterable<ActorSpec>) {
		if (slice.due() && !(await yieldFor(host, view, slice))) return false;
		if (host.holds(spec.id) || tombstones.has(spec.id) || host.deletedDuringWalk(spec.id) || !host.owns(spec.id)) continue;
		// ActorSpec.timeout is Tarearbol's name for the periodic interval.
		host.spawn(spec.id, spec.payload ?? null, spec.timeout ?? host.defaultInterval);
	}
	return true;
}

/** Lets timers and I/O run in the middle of a long activation (heartbeats must go out, or peers would think this node dead). */
async function yieldFor(host: ActivationHost, view: View, slice: TimeSlice): Promise<boolean> {
	await new Promise((resolve) => setImmediate(resolve));
	slice.restart();
	return host.isCurrent(view);
}

/** Tells when a loop has held the event loop for SLICE_MS. */
class TimeSlice {
	private started = Date.now();
	private count = 0;

	due(): boolean {
		// Date.now() is cheap but not free: look at the clock every 1024 items.
		return (++this.count & 1023) === 0 && Date.now() - this.started >= SLICE_MS;
	}

	restart(): void {
		this.started = Date.now();
	}
}

/**
 * Remembers what decides whether a settle can give this node keys: consistent
 * hashing moves keys only to members that are new, so a node that was a member
 * of the last settled view, with no member gone since and no key given away in
 * a view in between coming back, owns nothing new, and walking every spec would
 * only cost time.
 */
export class SettleMemory {
	/** Members of the last view this node settled on (null before the first). */
	private members: readonly string[] | null = null;
	/** Ids of actors released since the last settle because their key moved (a later view may give them back). */
	private readonly movedAway = new Set<string>();

	moved(id: string): void {
		this.movedAway.add(id);
	}

	/** The walk of the last settle stopped before its end: the next settle walks whatever its view. */
	interrupted(): void {
		this.members = null;
	}

	/** Records the settle on view; whether it may give self keys it does not hold. */
	settle(view: View, self: string, owns: (id: string) => boolean): boolean {
		const before = this.members;
		this.members = view.members;
		let cameBack = false;
		for (const id of this.movedAway) if (owns(id)) cameBack = true;
		this.movedAway.clear();
		return before === null || !before.includes(self) || before.some((m) => !view.members.includes(m)) || cameBack;
	}
}
