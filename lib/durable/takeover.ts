/**
 * Taking over the journals of node instances that are gone.
 *
 * A journal whose instance no live keyhive node advertises is orphaned: its node
 * crashed, lost its disk, was removed, or was declared dead while it stalled. In
 * the handoff of every view, the view's first member seals each orphaned journal
 * (its writer, if it still runs, can commit nothing more), replays it into a
 * scratch store, commits that state through its own journal, and deletes the
 * orphan. The shipper then moves the keys it does not own to their owners, all
 * before this node announces its handoff done, so no key of a lost instance is
 * performed anywhere until its state is back.
 *
 * Whose journal is whose is in its instance id (lib/durable/instance-id.ts). A
 * journal is orphaned when its node advertises another instance now (it
 * restarted), or its node is not in discovery and either advertised it before
 * (it crashed, left, or stalled past the heartbeat timeout) or a grace has passed
 * since the journal was found (a starting node's journal opens before the others
 * discover it). A node in discovery that advertises no instance yet is opening
 * its journal: its journals wait. After all nodes were replaced (compose down,
 * then up) the old journals are taken over once the grace is over.
 */
import type { Store } from "../store/store";
import type { TopologyParticipant, View } from "../topology/topology";
import { type DurableStore, RECORD_BYTES } from "./durable-store";
import { split } from "../store/split";
import type { Positioned } from "./journal";
import { orphanState, whyOrphaned } from "./instance-id";
import { Replay } from "./replay";

/** The journals of every instance, as a node taking over sees them (InstanceLogs on JetStream). */
export interface OtherJournals {
	instances(): Promise<string[]>;
	seal(instance: string, by: string): Promise<number>;
	read(instance: string, untilSeq: number): AsyncIterable<Positioned>;
	remove(instance: string): Promise<void>;
}

export interface TakeoverOptions {
	self: string;
	durable: DurableStore;
	/** null while the journal is not open, and for a node without JetStream. */
	journals(): OtherJournals | null;
	/** The keyhive nodes discovery sees now, this one included, and the instance each advertises (null while it opens its journal). */
	liveNodes(): ReadonlyMap<string, string | null>;
	/** How long a journal whose node is not in discovery may be a node starting (its journal opens before it is discovered). */
	graceMs: number;
	/**
	 * Resolves if this node still owns its own journal; throws if it was taken over. A node that
	 * resumes from a stall sees peers gone that are alive (it missed their heartbeats): asked
	 * first, it learns it is the one taken over before it seals a live node's journal.
	 */
	confirmOwner(): Promise<void>;
	/** Whether view is still the node's current view (a handoff for an older one stops early). */
	isCurrent(view: View): boolean;
	logger?: { info(msg: string): void; warn(msg: string): void };
}

/** Records written at once: enough for the journal to fill its groups, few enough to keep memory small. */
const WINDOW_RECORDS = 8;

/** How often a handoff waiting for a node that is opening its journal looks again. */
const RECHECK_MS = 250;

export class Takeover implements TopologyParticipant {
	/** One handoff's takeover at a time: a newer view's waits for the older one's. */
	private running: Promise<void> = Promise.resolve();

	/** Instances seen advertised by their node. */
	private readonly seen = new Set<string>();
	/** When this node first found a journal whose node was not in discovery. */
	private readonly found = new Map<string, number>();

	constructor(private readonly options: TakeoverOptions) {}

	/** Discovery now: the instances advertised are remembered as seen live. */
	noteLive(live: ReadonlyMap<string, string | null>): void {
		for (const instance of live.values()) if (instance !== null) this.seen.add(instance);
	}

	/** The view's first member takes over every orphaned journal. */
	handoff(view: View): Promise<void> {
		const run = this.running.then(() => this.takeOverOrphans(view));
		this.running = run.catch(() => undefined);
		return run;
	}

	private async takeOverOrphans(view: View): Promise<void> {
		if (view.members[0] !== this.options.self) return;
		const journals = this.options.journals();
		if (!journals) return;
		for (;;) {
			if (!this.options.isCurrent(view)) return;
			let waiting = false;
			for (const instance of await journals.instances()) {
				// Discovery as it is now, after every await: a node discovered meanwhile must count.
				const live = this.options.liveNodes();
				this.noteLive(live);
				const state = orphanState(instance, live, { seenLive: this.seen.has(instance), graceOver: this.graceOver(instance) });
				if (state === "orphaned") {
					await this.options.confirmOwner();
					await this.takeOver(journals, instance, whyOrphaned(instance, live));
				} else if (state === "starting") waiting = true;
			}
			if (!waiting) return;
			await new Promise((resolve) => setTimeout(resolve, RECHECK_MS));
		}
	}

	private graceOver(instance: string): boolean {
		const now = performance.now();
		const found = this.found.get(instance) ?? now;
		this.found.set(instance, found);
		return now - found >= this.options.graceMs;
	}

	private async takeOver(journals: OtherJournals, instance: string, why: string): Promise<void> {
		const started = performance.now();
		const sealedAt = await journals.seal(instance, this.options.self);
		const replay = new Replay();
		let state: Store;
		try {
			for await (const entry of journals.read(instance, sealedAt)) replay.add(entry);
			state = replay.finish();
		} catch (err) {
			replay.discard();
			throw err;
		}
		try {
			const rows = state.pendingCount;
			const actors = state.actorRecordCount;
			// Records in flight together: the journal groups them into fewer publishes, in their order.
			const inFlight: Promise<unknown>[] = [];
			for (let next = state.snapshotPart(null, RECORD_BYTES); next; next = state.snapshotPart(next.cursor, RECORD_BYTES)) {
				// Cut to one record each, so the records of parts in flight together keep the parts' order.
				for (const record of split(next.part, Number.POSITIVE_INFINITY, RECORD_BYTES)) {
					const write = this.options.durable.receive(record);
					// Awaited below, in order: a failure surfaces there, not as an unhandled rejection.
					write.catch(() => undefined);
					inFlight.push(write);
					if (inFlight.length >= WINDOW_RECORDS) await inFlight.shift();
				}
			}
			await Promise.all(inFlight);
			await journals.remove(instance);
			this.found.delete(instance);
			this.seen.delete(instance);
			this.options.logger?.info(
				`took over the journal of lost instance ${instance} (${why}): ${replay.records} records${replay.snapshots > 0 ? ` from a snapshot` : ""}, ${rows} pending rows, ${actors} actor records, in ${Math.round(performance.now() - started)} ms`,
			);
		} finally {
			state.close();
		}
	}
}
