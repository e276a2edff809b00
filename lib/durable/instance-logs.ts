/**
 * Every instance's journal in the namespace's stream, as a node taking lost
 * instances over sees them: which there are, sealing one, reading it, removing it.
 */
import type { JetStreamClient, JetStreamManager, MsgRequest, NatsError } from "nats";
import type { Positioned } from "./journal";
import type { JournalRecord } from "./records";
import type { OtherJournals } from "./takeover";

/** The header in which every journal message names the sequence of the message before it on its subject. */
export const PREVIOUS_HEADER = "Keyhive-Previous";
/** JetStream's code for "no message found". */
const NO_MESSAGE = 10037;

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
	 * Read one message at a time from the stream's leader (a consumer may be placed on a replica
	 * still catching up), and checked as a chain: every message the journal wrote names the
	 * sequence before it, so a message missing in between fails the read instead of being skipped.
	 * The one jump allowed is to a snapshot's first part: what came before it is purged only once
	 * its last part is stored (the writer purged while this read ran), so after a jump the read
	 * fails unless it meets a snapshot's last part: the history it skipped is then not needed.
	 */
	async *read(instance: string, untilSeq: number): AsyncIterable<Positioned> {
		const subject = this.subjectOf(instance);
		let previous: number | null = null;
		let jumped: number | null = null;
		for (let from = 1; from <= untilSeq; ) {
			const message = await this.jsm.streams.getMessage(this.stream, nextOnSubject(from, subject)).catch((err: NatsError) => {
				if (err.api_error?.err_code === NO_MESSAGE || err.code === "404") return null;
				throw err;
			});
			if (message === null || message.seq > untilSeq) {
				if (jumped !== null) throw new Error(`the journal of ${instance} has a gap before message ${jumped}, a snapshot that never completed`);
				throw new Error(`the journal of ${instance} ends before its seal at ${untilSeq}`);
			}
			const records = JSON.parse(message.string()) as JournalRecord[];
			const before = message.header?.get(PREVIOUS_HEADER);
			if (before) {
				const snapshotBegins = records[0]?.t === "snapshot" && records[0].begin;
				const expected = snapshotBegins && Number(before) >= (previous ?? 0) ? Number(before) : (previous ?? 0);
				if (Number(before) !== (previous ?? 0)) jumped = message.seq;
				if (Number(before) !== expected) {
					throw new Error(`the journal of ${instance} has a gap: message ${message.seq} follows ${before}, the read found ${expected}`);
				}
			}
			if (records.some((r) => r.t === "snapshot" && r.last)) jumped = null;
			if (jumped !== null && message.seq === untilSeq) {
				throw new Error(`the journal of ${instance} has a gap before message ${jumped}, a snapshot that never completed`);
			}
			for (const record of records) yield { record, seq: message.seq };
			previous = message.seq;
			from = message.seq + 1;
		}
	}

	async remove(instance: string): Promise<void> {
		await this.jsm.streams.purge(this.stream, { filter: this.subjectOf(instance) });
	}

	private subjectOf(instance: string): string {
		return `${this.subjectPrefix}.${instance}`;
	}
}

/** The first message at or after seq on subject (STREAM.MSG.GET takes next_by_subj since nats-server 2.9; nats.js types only direct gets with it). */
function nextOnSubject(seq: number, subject: string): MsgRequest {
	const request: { seq: number; next_by_subj: string } = { seq, next_by_subj: subject };
	return request as unknown as MsgRequest;
}
