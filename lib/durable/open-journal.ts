/**
 * The journal a node gets: JetStream when it has a (NATS) transporter, its own
 * SQLite file when it runs alone.
 */
import type { KeyhiveConfig } from "../config";
import { natsOptions } from "../nats";
import type { Store } from "../store/store";
import { JetStreamJournal } from "./jetstream-journal";
import type { Journal } from "./journal";
import { DurableStore } from "./durable-store";
import type { OtherJournals } from "./takeover";

export interface OpenedJournal {
	journal: Journal;
	/** The journals of other instances (null without JetStream: nobody else writes this node's state). */
	others: OtherJournals | null;
}

export async function openJournal(
	config: KeyhiveConfig,
	nodeID: string,
	store: Store,
	logger: { info(msg: string): void; warn(msg: string): void; error(msg: string): void },
): Promise<OpenedJournal> {
	if (!config.transporter) return { journal: DurableStore.local(store).journal, others: null };
	const journal = await JetStreamJournal.open({
		connection: natsOptions(config.transporter),
		namespace: config.namespace,
		replicas: config.replicas,
		node: nodeID,
		target: store,
		logger,
	});
	return { journal, others: journal.logs };
}
