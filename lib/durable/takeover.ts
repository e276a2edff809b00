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
 * A journal of an instance this node has seen live and that is gone now is taken
 * over at once. One it has never seen may be a node that is just starting (its
 * journal opens before discovery announces it): it is taken over only when it is
 * still unannounced after a grace period, which is what happens to every journal
 * after all nodes were replaced (compose down, then up).
 */
import type { Store } from "../store/store";
import type { TopologyParticipant, View } from "../topology/topology";
import type { DurableStore } from "./durable-store";
import type { Positioned } from "./journal";
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
	/** Instances advertised by the keyhive nodes discovery sees now, this one included. */
	liveInstances(): ReadonlySet<string>;
	/** How long an instance never seen live may be starting up (discovery, then its first announcement). */
	graceMs: number;
	/** Whether view is still the node's current view (a handoff for an older one stops early). */
	isCurrent(view: View): boolean;
	logger?: { info(msg: string): void; warn(msg: string): void };
}

/** Bytes per record when the taken-over state is committed to this node's journal. */
const PART_BYTES = 256 * 1024;

/** How often a handoff waiting for instances never seen looks again. */
const RECHECK_MS = 250;

export class Takeover implements TopologyParticipant {
	/** Instances taken over since start. */
	taken = 0;
	/** Every instance seen live since start. */
	private readonly seen = new Set<string>();
	/** When this node first found the journal of an instance it has never seen live. */
	private readonly unannounced = new Map<string, number>();
	/** One handoff's takeover at a time: a newer view's waits for the older one's. */
	private running: Promise<void> = Promise.resolve();

	constructor(private readonly options: TakeoverOptions) {}

	/** Discovery's instances now: remembered as seen. */
	noteLive(instances: Iterable<string>): void {
		for (const instance of instances) this.seen.add(instance);
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
			const live = this.options.liveInstances();
			this.noteLive(live);
			let waiting = false;
			for (const instance of await journals.instances()) {
				if (live.has(instance)) continue;
				if (this.seen.has(instance) || this.graceOver(instance)) await this.takeOver(journals, instance);
				else waiting = true;
			}
			if (!waiting) return;
			await new Promise((resolve) => setTimeout(resolve, RECHECK_MS));
		}
	}

	private graceOver(instance: string): boolean {
		const now = performance.now();
		const found = this.unannounced.get(instance);
		if (found === undefined) {
			this.unannounced.set(instance, now);
			return false;
		}
		return now - found >= this.options.graceMs;
	}

	private async takeOver(journals: OtherJournals, instance: string): Promise<void> {
		const started = Date.now();
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
			for (let next = state.snapshotPart(null, PART_BYTES); next; next = state.snapshotPart(next.cursor, PART_BYTES)) {
				await this.options.durable.receive(next.part);
			}
			await journals.remove(instance);
			this.unannounced.delete(instance);
			this.taken++;
			this.options.logger?.info(
				`took over the journal of lost instance ${instance}: ${replay.records} records, ${rows} pending rows, ${actors} actor records, in ${Date.now() - started} ms`,
			);
		} finally {
			state.close();
		}
	}
}
