/**
 * What a node's journal holds: one record per transaction that changes a key's
 * durable state, in the order they committed. Replaying an instance's records
 * (from its last snapshot) into an empty store gives that instance's state;
 * the store applies them with Store.applyAll, live and on replay alike.
 *
 * Records name rows by message id, result uid and actor id, never by a store's
 * local seq, so any store can apply them.
 */
import type { Commit, NewMessage, Shipment } from "../store/store";

/** Rows entering keyhive, stamped where they entered (lib/durable/stamps.ts). */
export type EnteringRow = NewMessage & { stamp: number };

/** What a shipment's sender deletes once the receiver has committed it. */
export interface Forgotten {
	messages: string[];
	/** Actor ids with the version shipped: a newer record that came back meanwhile stays. */
	actors: { id: string; version: number }[];
	processed: string[];
	outbox: string[];
	dead: { id: string; diedAt: number }[];
}

export type JournalRecord =
	/** The first record of every instance: who wrote this log. */
	| { t: "open"; node: string; at: number }
	/** Taken when a node starts consuming the inbox: its position orders this consumer's rows after every earlier one's. */
	| { t: "epoch" }
	| { t: "append"; rows: EnteringRow[] }
	| { t: "receive"; shipment: Shipment }
	| { t: "commit"; commit: Commit; at: number }
	| { t: "forget"; forgotten: Forgotten }
	/** Results the broker confirmed. */
	| { t: "published"; uids: string[] }
	/** Dead letters put back as pending, with new stamps. */
	| { t: "requeue"; dead: { id: string; diedAt: number; stamp: number }[] }
	| { t: "prune"; before: number }
	/** A part of a snapshot of the whole store; the first part of a snapshot has begin: everything before it may be purged once the last part is stored. */
	| { t: "snapshot"; begin: boolean; last: boolean; part: Shipment }
	/** Written by the node taking this log over: the writer's next write is refused. */
	| { t: "seal"; by: string; at: number };

export type RecordType = JournalRecord["t"];
