/**
 * Every instance's journal in the namespace's stream, as a node taking lost
 * instances over sees them: which there are, sealing one, reading it, removing it.
 */
import { DeliverPolicy, type JetStreamClient, type JetStreamManager } from "nats";
import type { Positioned } from "./journal";
import type { JournalRecord } from "./records";
import type { OtherJournals } from "./takeover";

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

	/** The instance's records up to and including untilSeq, in order; each carries its group's sequence. */
	async *read(instance: string, untilSeq: number): AsyncIterable<Positioned> {
		const consumer = await this.js.consumers.get(this.stream, { filterSubjects: this.subjectOf(instance), deliver_policy: DeliverPolicy.All });
		const messages = await consumer.consume({ max_messages: 256 });
		try {
			for await (const message of messages) {
				if (message.seq > untilSeq) break;
				for (const record of JSON.parse(message.string()) as JournalRecord[]) yield { record, seq: message.seq };
				if (message.seq === untilSeq) break;
			}
		} finally {
			await messages.close().catch(() => undefined);
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
