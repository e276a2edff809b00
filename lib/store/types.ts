/**
 * The shapes the store keeps and moves: messages, actor records, processed
 * ids, dead letters and results, and a shipment of all of them for some keys.
 */
export type Headers = Record<string, string | number | boolean>;

/** A message entering keyhive. stamp orders it among its key's messages (lib/durable/stamps.ts). */
export interface NewMessage {
	id: string;
	key: string;
	payload: string;
	headers?: Headers | null;
	stamp?: number;
	receivedAt?: number;
	attempts?: number;
}

export interface StoredMessage {
	seq: number;
	id: string;
	key: string;
	stamp: number;
	payload: string;
	headers: Headers | null;
	receivedAt: number;
	attempts: number;
}

export interface ActorRecord {
	id: string;
	payload: unknown;
	timeout: number;
	deleted: boolean;
	/**
	 * The journal position that committed this state: positions are one order across the
	 * cluster, so of two copies of a record the later one wins wherever they meet.
	 */
	version?: number;
}

export interface ProcessedRecord {
	id: string;
	key: string;
	at: number;
}

export interface DeadMessage extends StoredMessage {
	reason: string;
	diedAt: number;
}

/** A result not yet confirmed by the broker, as it moves with its key (seq is each store's own). */
export interface ShippedResult {
	uid: string;
	key: string;
	body: string;
	headers: Headers | null;
	createdAt: number;
}

/** What moves with a set of keys from one node to another (and what a snapshot part holds). */
export interface Shipment {
	messages: Omit<StoredMessage, "seq">[];
	actors: ActorRecord[];
	processed: ProcessedRecord[];
	/** Results not yet published. */
	outbox?: ShippedResult[];
	/** Dead letters, waiting for a requeue on the key's owner. */
	dead?: Omit<DeadMessage, "seq">[];
	/** Set when an inbox consumer routes new rows to their owner: its epoch (older consumers are refused). */
	routed?: number;
}

export interface OutboxEntry {
	seq: number;
	uid: string;
	key: string;
	body: string;
	headers: Headers | null;
}

/** A result a perform wrote; its uid, given before it is journaled, stays with it when it moves with its key. */
export interface NewResult {
	uid?: string;
	key: string;
	body: string;
	headers?: Headers | null;
}

/** Everything one group of finished performs changes, committed at once. Rows are named by message id. */
export interface Commit {
	/** Performed messages: deleted, and their ids remembered. */
	done?: { id: string; key: string }[];
	/** Failed once more: their attempts go up by one. */
	failed?: string[];
	/** Failed for the last time: moved to the dead letters with the reason. */
	dead?: { id: string; reason: string }[];
	actors?: ActorRecord[];
	/** Results, each with the key whose perform made it (it moves with that key until published). */
	outbox?: NewResult[];
}

export function emptyShipment(): Required<Omit<Shipment, "routed">> {
	return { messages: [], actors: [], processed: [], outbox: [], dead: [] };
}
