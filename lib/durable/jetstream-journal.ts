/**
 * The journal of a node with a transporter: one subject per node instance in one
 * JetStream stream per namespace (lib/durable/jetstream-stream.ts).
 *
 * Invariant: a record is applied to the store only after JetStream stored it, and
 * every publish expects the subject's last sequence to be the last one this
 * instance wrote. So once another node sealed the subject, this instance's next
 * write is refused: nothing it does after a takeover commits (it is fenced).
 *
 * Writes queue up and go out group-committed: whatever queued while a publish was
 * in flight is the next publish, one JetStream message. A publish whose outcome is
 * unknown (timeout, NATS gone) is never given up or reordered: the writer asks
 * JetStream what the subject's last message is, which tells stored, not stored or
 * sealed, and until it can tell, every write waits (nothing is acked meanwhile).
 */
import { connect, headers, type JetStreamClient, type JetStreamManager, type MsgHdrs, type NatsConnection, type NatsError } from "nats";
import type { NatsOptions } from "../nats";
import { newInstanceId } from "./instance-id";
import { InstanceLogs, PREVIOUS_HEADER } from "./instance-logs";
import { FencedError, type Journal, type JournalTarget, JournalUnavailableError } from "./journal";
import { ensureStream, JournalStartError, streamNames } from "./jetstream-stream";
import type { JournalRecord } from "./records";

/** The most bytes of records one publish carries (the server's max_payload is 1 MB). */
const GROUP_BYTES = 512 * 1024;
/** Bytes per snapshot record. */
const SNAPSHOT_PART_BYTES = 256 * 1024;
/** A snapshot is taken once this much was written since the last one, and at least twice its size. */
const SNAPSHOT_MIN_BYTES = 8 * 1024 * 1024;
const PUBLISH_TIMEOUT_MS = 2000;
const RETRY_MS = 1000;
/** An idle instance looks this often whether its subject was sealed (a write would also find out). */
const WATCH_MS = 2000;
/**
 * How long a write or check proves this instance still owns its log. Below the
 * shortest heartbeat timeout (1 s): before that, no other node has declared it gone.
 * A stalled process that resumes sees its monotonic clock jumped past this.
 */
const OWNER_LEASE_MS = 500;
/** JetStream's code for an expected last subject sequence that is not the subject's last. */
const WRONG_LAST_SEQUENCE = 10071;

export interface JetStreamJournalOptions {
	connection: NatsOptions;
	namespace: string;
	replicas: number;
	node: string;
	target: JournalTarget;
	logger: { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
	/** How long opening keeps trying (JetStream electing a leader, a server restarting). */
	startTimeoutMs?: number;
}

interface Waiting {
	record: JournalRecord;
	bytes: string;
	resolve(result: unknown): void;
	reject(err: unknown): void;
}

type Outcome = { stored: number } | { notStored: true } | { sealed: string };

export class JetStreamJournal implements Journal {
	readonly instance: string;
	readonly logs: InstanceLogs;
	private readonly subject: string;
	private readonly queue: Waiting[] = [];
	private last = 0;
	private groups = 0;
	private writing: Promise<void> | null = null;
	private fencedReason: string | null = null;
	private readonly fencedListeners: ((reason: string) => void)[] = [];
	private closed = false;
	private unavailableSince: number | null = null;
	private bytesSinceSnapshot = 0;
	private lastSnapshotBytes = 0;
	/** A view is changing: a snapshot would hold up its handoff (holdSnapshots). */
	private snapshotsHeld = false;
	private readonly watch: NodeJS.Timeout;
	private lastWriteAt = performance.now();
	/** When a write or check last proved the subject unsealed. */
	private ownerConfirmedAt = performance.now();

	private constructor(
		private readonly nc: NatsConnection,
		private readonly js: JetStreamClient,
		private readonly jsm: JetStreamManager,
		private readonly stream: string,
		subjectPrefix: string,
		private readonly options: JetStreamJournalOptions,
	) {
		this.instance = newInstanceId(options.node);
		this.subject = `${subjectPrefix}.${this.instance}`;
		this.logs = new InstanceLogs(js, jsm, stream, subjectPrefix);
		this.watch = setInterval(() => void this.checkSealed(), WATCH_MS);
		this.watch.unref();
	}

	/** Connects, makes sure the stream exists, and writes this instance's first record. Throws a JournalStartError (one line). */
	static async open(options: JetStreamJournalOptions): Promise<JetStreamJournal> {
		const deadline = performance.now() + (options.startTimeoutMs ?? 30_000);
		const where = options.connection.servers.join(",");
		let nc: NatsConnection;
		try {
			nc = await connect({
				...options.connection,
				name: `keyhive-journal-${options.node}`,
				maxReconnectAttempts: -1,
				reconnectTimeWait: 500,
				timeout: 5000,
			});
		} catch (err) {
			throw new JournalStartError(`cannot connect to NATS at ${where} (${(err as Error).message})`);
		}
		try {
			const jsm = await nc.jetstreamManager({ timeout: 5000 }).catch((err: NatsError) => {
				throw new JournalStartError(`NATS at ${where} has no JetStream (${err.message}); start nats-server with -js`);
			});
			const names = streamNames(options.namespace);
			await ensureStream(jsm, names.stream, `${names.subjectPrefix}.*`, options.replicas, deadline);
			const journal = new JetStreamJournal(nc, nc.jetstream({ timeout: PUBLISH_TIMEOUT_MS }), jsm, names.stream, names.subjectPrefix, options);
			await journal.writeFirst(deadline);
			return journal;
		} catch (err) {
			await nc.close().catch(() => undefined);
			if (err instanceof JournalStartError) throw err;
			throw new JournalStartError(`cannot write to JetStream at ${where} (${(err as Error).message})`);
		}
	}

	private async writeFirst(deadline: number): Promise<void> {
		const record: JournalRecord = { t: "open", node: this.options.node, at: Date.now() };
		for (;;) {
			try {
				const ack = await this.js.publish(this.subject, JSON.stringify([record]), {
					msgID: `${this.instance}:0`,
					expect: { lastSubjectSequence: 0 },
					headers: previousHeader(0),
					timeout: PUBLISH_TIMEOUT_MS,
				});
				this.last = ack.seq;
				this.options.target.applyAll([{ record, seq: ack.seq }]);
				return;
			} catch (err) {
				const reason = storageRefusal(err);
				if (reason) throw new JournalStartError(`JetStream refuses to store (${reason})`);
				if (performance.now() > deadline) throw err;
				await sleep(500);
			}
		}
	}

	write(record: JournalRecord): Promise<unknown> {
		if (this.fencedReason !== null) return Promise.reject(new FencedError(this.instance, this.fencedReason));
		if (this.closed) return Promise.reject(new JournalUnavailableError("the journal is closed"));
		return new Promise((resolve, reject) => {
			this.queue.push({ record, bytes: JSON.stringify(record), resolve, reject });
			this.writing ??= this.drain().finally(() => {
				this.writing = null;
			});
		});
	}

	async epoch(): Promise<number> {
		return (await this.write({ t: "epoch" })) as number;
	}

	async idle(): Promise<void> {
		while (this.writing) await this.writing;
	}

	async confirmOwner(): Promise<void> {
		if (this.fencedReason !== null) throw new FencedError(this.instance, this.fencedReason);
		const asked = performance.now();
		if (asked - this.ownerConfirmedAt <= OWNER_LEASE_MS) return;
		const outcome = await this.lastOutcome("", new Error("owner check"));
		if ("sealed" in outcome) {
			this.fence(outcome.sealed);
			throw new FencedError(this.instance, outcome.sealed);
		}
		this.ownerConfirmedAt = Math.max(this.ownerConfirmedAt, asked);
	}

	holdSnapshots(hold: boolean): void {
		this.snapshotsHeld = hold;
	}

	onFenced(listener: (reason: string) => void): void {
		this.fencedListeners.push(listener);
		if (this.fencedReason !== null) listener(this.fencedReason);
	}

	/** Publishes written, unpublished or stalled (for metrics and benchmarks). */
	stats(): { groups: number; queued: number; unavailable: boolean; fenced: boolean } {
		return { groups: this.groups, queued: this.queue.length, unavailable: this.unavailableSince !== null, fenced: this.fencedReason !== null };
	}

	async retire(): Promise<void> {
		await this.idle();
		if (this.fencedReason === null) await this.logs.remove(this.instance);
	}

	async close(): Promise<void> {
		this.closed = true;
		clearInterval(this.watch);
		for (const waiting of this.queue.splice(0)) waiting.reject(new JournalUnavailableError("the journal is closed"));
		await this.idle();
		// close(), not drain(): every write is settled, and drain would wait forever for a server that is gone.
		await this.nc.close().catch(() => undefined);
	}

	private async drain(): Promise<void> {
		while (this.queue.length > 0 && this.fencedReason === null && !this.closed) {
			const group = this.nextGroup();
			const size = group.reduce((sum, w) => sum + Buffer.byteLength(w.bytes) + 1, 1);
			const limit = this.nc.info?.max_payload ?? Number.POSITIVE_INFINITY;
			if (size > limit) {
				// Only a lone record can be this large (groups stop at GROUP_BYTES): waiting would never store it.
				for (const w of group) w.reject(new Error(`a ${w.record.t} record of ${size} bytes is more than one NATS message may carry (max_payload ${limit})`));
				continue;
			}
			const seq = await this.store(group.map((w) => w.bytes));
			if (seq === null) {
				const err = this.fencedReason !== null ? new FencedError(this.instance, this.fencedReason) : new JournalUnavailableError("the journal is closed");
				for (const w of group) w.reject(err);
				return;
			}
			this.apply(group, seq);
			await this.snapshotIfDue();
		}
	}

	/** The queued records that go out together: an epoch alone (its position must be its own), else up to GROUP_BYTES. */
	private nextGroup(): Waiting[] {
		if (this.queue[0].record.t === "epoch") return this.queue.splice(0, 1);
		let bytes = 0;
		let n = 0;
		while (n < this.queue.length && this.queue[n].record.t !== "epoch" && (n === 0 || bytes + this.queue[n].bytes.length <= GROUP_BYTES)) {
			bytes += this.queue[n].bytes.length;
			n++;
		}
		return this.queue.splice(0, n);
	}

	private apply(group: Waiting[], seq: number): void {
		let results: unknown[];
		try {
			results = this.options.target.applyAll(group.map((w) => ({ record: w.record, seq })));
		} catch (err) {
			// JetStream holds what the store could not apply: this instance's store no longer equals its journal.
			for (const w of group) w.reject(err);
			this.fence(`the store could not apply what JetStream stored (${(err as Error).message})`);
			return;
		}
		for (const [i, w] of group.entries()) w.resolve(results[i]);
	}

	/** Publishes one group and returns its sequence; null when the instance was fenced or closed meanwhile. */
	private async store(parts: string[]): Promise<number | null> {
		const body = `[${parts.join(",")}]`;
		const msgID = `${this.instance}:${this.last}`;
		for (;;) {
			const sentAt = performance.now();
			const outcome = await this.publish(body, msgID);
			if ("stored" in outcome) {
				this.stored(outcome.stored, body.length, sentAt);
				return outcome.stored;
			}
			if ("sealed" in outcome) {
				this.fence(outcome.sealed);
				return null;
			}
			if (this.closed) return null;
			await sleep(RETRY_MS);
		}
	}

	private stored(seq: number, bytes: number, publishedAt: number): void {
		this.last = seq;
		this.ownerConfirmedAt = Math.max(this.ownerConfirmedAt, publishedAt);
		this.groups++;
		this.bytesSinceSnapshot += bytes;
		this.lastWriteAt = performance.now();
		if (this.unavailableSince !== null) {
			this.options.logger.info(`JetStream stores again after ${Math.round((performance.now() - this.unavailableSince) / 1000)} s; writes go on`);
			this.unavailableSince = null;
		}
	}

	/** One try: stored, sealed by another node, or not stored (the caller tries again with the same msgID). */
	private async publish(body: string, msgID: string): Promise<Outcome> {
		try {
			const ack = await this.js.publish(this.subject, body, {
				msgID,
				expect: { lastSubjectSequence: this.last },
				headers: previousHeader(this.last),
				timeout: PUBLISH_TIMEOUT_MS,
			});
			return { stored: ack.seq };
		} catch (err) {
			if ((err as NatsError).api_error?.err_code === WRONG_LAST_SEQUENCE) return this.lastOutcome(msgID, err);
			this.unavailable(err);
			// The outcome is unknown: the last message of the subject says what happened.
			return this.lastOutcome(msgID, err).catch(() => ({ notStored: true }) as const);
		}
	}

	/** What the subject's last message says about the publish msgID. */
	private async lastOutcome(msgID: string, cause: unknown): Promise<Outcome> {
		const lastMsg = await this.jsm.streams.getMessage(this.stream, { last_by_subj: this.subject }).catch((err: NatsError) => {
			if (err.api_error?.code === 404) return null;
			throw err;
		});
		if (lastMsg === null) return { sealed: "its journal was removed" };
		if (lastMsg.seq === this.last) return { notStored: true };
		if (lastMsg.header.get("Nats-Msg-Id") === msgID) return { stored: lastMsg.seq };
		const records = JSON.parse(lastMsg.string()) as JournalRecord[];
		const seal = records.find((r) => r.t === "seal");
		if (seal && seal.t === "seal") return { sealed: `sealed by ${seal.by}` };
		return { sealed: `its journal moved on without it (${(cause as Error).message})` };
	}

	private unavailable(err: unknown): void {
		if (this.unavailableSince !== null) return;
		this.unavailableSince = performance.now();
		this.options.logger.error(
			`JetStream cannot store now (${(err as Error).message}); writes wait and nothing is acked, trying again every ${RETRY_MS / 1000} s`,
		);
	}

	/** An idle instance finds out it was taken over (a frozen node that resumed without writing). */
	private async checkSealed(): Promise<void> {
		if (this.fencedReason !== null || this.closed || this.writing || performance.now() - this.lastWriteAt < WATCH_MS) return;
		try {
			const asked = performance.now();
			const outcome = await this.lastOutcome("", new Error("idle check"));
			if (!("sealed" in outcome)) this.ownerConfirmedAt = Math.max(this.ownerConfirmedAt, asked);
			else if (!this.writing && this.fencedReason === null) this.fence(outcome.sealed);
		} catch {
			// NATS unreachable: the next write or check finds out.
		}
	}

	private fence(reason: string): void {
		if (this.fencedReason !== null) return;
		this.fencedReason = reason;
		const err = new FencedError(this.instance, reason);
		for (const waiting of this.queue.splice(0)) waiting.reject(err);
		this.options.logger.error(`instance ${this.instance} was taken over by another node (${reason}); it commits nothing more`);
		for (const listener of this.fencedListeners) listener(reason);
	}

	/**
	 * Once enough was written since the last snapshot (twice as much while writes wait
	 * or a view changes): the whole store in parts, with nothing else written in between,
	 * then everything before it is purged. A reader uses a snapshot only when its last
	 * part is there.
	 */
	private async snapshotIfDue(): Promise<void> {
		const due = Math.max(SNAPSHOT_MIN_BYTES, 2 * this.lastSnapshotBytes);
		// Writes waiting or a view changing go first, unless the journal grew to twice its due size.
		const deferred = this.queue.length > 0 || this.snapshotsHeld;
		if (this.bytesSinceSnapshot < (deferred ? 2 * due : due)) return;
		const target = this.options.target;
		let begin = 0;
		let bytes = 0;
		let current = target.snapshotPart(null, SNAPSHOT_PART_BYTES);
		for (let first = true; ; first = false) {
			const next = current ? target.snapshotPart(current.cursor, SNAPSHOT_PART_BYTES) : null;
			const record: JournalRecord = {
				t: "snapshot",
				begin: first,
				last: next === null,
				part: current?.part ?? { messages: [], actors: [], processed: [] },
			};
			const body = JSON.stringify(record);
			const seq = await this.store([body]);
			if (seq === null) return;
			if (first) begin = seq;
			bytes += body.length;
			if (next === null) break;
			current = next;
		}
		this.bytesSinceSnapshot = 0;
		this.lastSnapshotBytes = bytes;
		this.options.logger.info(`journal snapshot at ${begin}: ${bytes} bytes; what came before it is purged`);
		await this.jsm.streams.purge(this.stream, { filter: this.subject, seq: begin }).catch((err: Error) => {
			this.options.logger.warn(`could not purge the journal before its snapshot (${err.message}); the next snapshot will`);
		});
	}
}

/** A refusal that waiting cannot fix: account limits or storage full. */
export function storageRefusal(err: unknown): string | null {
	const api = (err as NatsError | null)?.api_error;
	if (!api) return null;
	// 10047 insufficient resources, 10023 insufficient resources, 10026/10027 account limits, 10077 maximum messages/bytes exceeded.
	if ([10023, 10026, 10027, 10047, 10077].includes(api.err_code ?? 0)) return api.description;
	return null;
}

function previousHeader(previous: number): MsgHdrs {
	const h = headers();
	h.set(PREVIOUS_HEADER, String(previous));
	return h;
}

function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}
