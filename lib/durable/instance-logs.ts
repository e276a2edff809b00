/**
 * Every instance's journal in the namespace's stream, as a node taking lost
 * instances over sees them: which there are, sealing one, reading it, removing it.
 */
import { AckPolicy, DeliverPolicy, type JetStreamClient, type JetStreamManager, nanos } from "nats";
import type { Positioned } from "./journal";
import type { JournalRecord } from "./records";
import type { OtherJournals } from "./takeover";

/** A reader's consumer is deleted by the server after this long unused (its reader died). */
const READER_IDLE_MS = 60_000;

export class InstanceLogs implements OtherJournals {
	constructor(
		private readonly js: JetStreamClient,
		private readonly jsm: JetStreamManager,
		private readonly stream: string,
		private readonly subjectPrefix: string,
	) {}

	async instances(): Promise<string[]> {
		const info = await this.jsm.streams.info(this.stream, { subjects_filter: `${this.subjectPrefix}.*` });
		return Object.keys(info.state.subjects ?? {}).map((subject) => subject.slice(this.subjectPrefix.length + 1));
	}

	/**
	 * Appends a seal to the instance's subject: its writer's next write is refused.
	 * Every taker's seal of one instance is one message (deduplicated), so two
	 * takers read up to the same position. Returns the seal's sequence.
	 */
	async seal(instance: string, by: string): Promise<number> {
		const record: JournalRecord = { t: "seal", by, at: Date.now() };
		const ack = await this.js.publish(this.subjectOf(instance), JSON.stringify([record]), { msgID: `seal:${instance}`, timeout: 5000 });
		return ack.seq;
	}

	/**
	 * The instance's records up to and including untilSeq, in order; each carries its group's sequence.
	 * Read through an ephemeral pull consumer of the instance's subject, deleted after; a gap in its
	 * delivery sequence (a message lost on a reconnect) fails the read rather than skip a record.
	 */
	async *read(instance: string, untilSeq: number): AsyncIterable<Positioned> {
		const info = await this.jsm.consumers.add(this.stream, {
			filter_subject: this.subjectOf(instance),
			deliver_policy: DeliverPolicy.All,
			ack_policy: AckPolicy.None,
			mem_storage: true,
			num_replicas: 1,
			inactive_threshold: nanos(READER_IDLE_MS),
		});
		const consumer = await this.js.consumers.get(this.stream, info.name);
		const messages = await consumer.consume({ max_messages: 256 });
		let delivered = 0;
		try {
			for await (const message of messages) {
				if (message.info.deliverySequence !== ++delivered) {
					throw new Error(`reading the journal of ${instance}: delivery ${message.info.deliverySequence} came where ${delivered} was due`);
				}
				if (message.seq > untilSeq) break;
				for (const record of JSON.parse(message.string()) as JournalRecord[]) yield { record, seq: message.seq };
				if (message.seq === untilSeq) break;
			}
		} finally {
			// stop(), not close(): close waits for pulls a reader that broke off never takes.
			messages.stop();
			await this.jsm.consumers.delete(this.stream, info.name).catch(() => undefined);
		}
	}

	async remove(instance: string): Promise<void> {
		await this.jsm.streams.purge(this.stream, { filter: this.subjectOf(instance) });
	}

	/** Bytes the stream holds (every instance's journal). */
	async bytes(): Promise<number> {
		return (await this.jsm.streams.info(this.stream)).state.bytes;
	}

	private subjectOf(instance: string): string {
		return `${this.subjectPrefix}.${instance}`;
	}
}
