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
 */
import { Store } from "../store/store";
import type { TopologyParticipant, View } from "../topology/topology";
import type { DurableStore } from "./durable-store";
import type { Positioned } from "./journal";

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
	logger?: { info(msg: string): void; warn(msg: string): void };
}

/** Records applied to the scratch store per transaction. */
const REPLAY_BATCH = 200;
/** Bytes per record when the taken-over state is committed to this node's journal. */
const PART_BYTES = 256 * 1024;

export class Takeover implements TopologyParticipant {
	/** Instances taken over since start. */
	taken = 0;

	constructor(private readonly options: TakeoverOptions) {}

	/** The view's first member takes over every orphaned journal. */
	async handoff(view: View): Promise<void> {
		if (view.members[0] !== this.options.self) return;
		const journals = this.options.journals();
		if (!journals) return;
		const live = this.options.liveInstances();
		for (const instance of await journals.instances()) {
			if (!live.has(instance)) await this.takeOver(journals, instance);
		}
	}

	private async takeOver(journals: OtherJournals, instance: string): Promise<void> {
		const started = Date.now();
		const sealedAt = await journals.seal(instance, this.options.self);
		const scratch = new Store(":memory:");
		try {
			let batch: Positioned[] = [];
			let records = 0;
			for await (const entry of journals.read(instance, sealedAt)) {
				batch.push(entry);
				records++;
				if (batch.length >= REPLAY_BATCH) {
					scratch.applyAll(batch);
					batch = [];
				}
			}
			if (batch.length > 0) scratch.applyAll(batch);
			const rows = scratch.pendingCount;
			const actors = scratch.actorRecordCount;
			for (let next = scratch.snapshotPart(null, PART_BYTES); next; next = scratch.snapshotPart(next.cursor, PART_BYTES)) {
				await this.options.durable.receive(next.part);
			}
			await journals.remove(instance);
			this.taken++;
			this.options.logger?.info(
				`took over the journal of lost instance ${instance}: ${records} records, ${rows} pending rows, ${actors} actor records, in ${Date.now() - started} ms`,
			);
		} finally {
			scratch.close();
		}
	}
}
