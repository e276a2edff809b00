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
 * in flight is the next publish, one JetStream message. A snapshot does not stop
 * them: its first part goes alone, and each later part rides along with a group
 * (lib/durable/replay.ts applies what came after its first part once its last is read). A publish whose outcome is
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
import type { SnapshotReader } from "../store/snapshot";

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
/** Bytes of a NATS message left for its headers (msg id, expected sequence, previous): max_payload counts them too. */
const HEADER_ROOM = 1024;
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

/** A snapshot being written: the store as it was when its first part was stored, read part by part. */
interface SnapshotInProgress {
	reader: SnapshotReader;
	/** The sequence of the message holding its first part (everything before it is purged once its last part is stored). */
	begin: number;
	parts: number;
	bytes: number;
	/** A part read that did not fit in the last publish. */
	unsent: { body: string; last: boolean } | null;
}

export class JetStreamJournal implements Journal {
	readonly instance: string;
	readonly logs: InstanceLogs;
	private readonly subject: string;
	private readonly queue: Waiting[] = [];
	private last = 0;
	private groups = 0;
	private writing: Promise<void> | null = null;
	/** Settles once the last write queued is applied or failed (writes settle in order). */
	private lastWrite: Promise<unknown> = Promise.resolve();
	private fencedReason: string | null = null;
	private readonly fencedListeners: ((reason: string) => void)[] = [];
	private closed = false;
	private unavailableSince: number | null = null;
	/** Bytes of records written since the last snapshot began (what it does not hold). */
	private bytesSinceSnapshot = 0;
	private lastSnapshotBytes = 0;
	private snapshot: SnapshotInProgress | null = null;
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
		const written = new Promise((resolve, reject) => {
			this.queue.push({ record, bytes: JSON.stringify(record), resolve, reject });
			this.startDrain();
		});
		this.lastWrite = written.catch(() => undefined);
		return written;
	}

	/**
	 * Drains the queue unless a drain runs. A write queued after the running drain looked at the
	 * queue for the last time, but before that drain's promise settled, would wait for the next
	 * write: so a drain that ends with writes queued starts the next one.
	 */
	private startDrain(): void {
		this.writing ??= this.drain().finally(() => {
			this.writing = null;
			if (this.queue.length > 0 && this.fencedReason === null && !this.closed) this.startDrain();
		});
	}

	async epoch(): Promise<number> {
		return (await this.write({ t: "epoch" })) as number;
	}

	/** A snapshot's remaining parts are not waited for: a handoff waits only for the writes before it. */
	async idle(): Promise<void> {
		await this.lastWrite;
	}

	/** Resolves when nothing is being published: writes and any snapshot under way are done. */
	private async drained(): Promise<void> {
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
		await this.drained();
		if (this.fencedReason === null) await this.logs.remove(this.instance);
	}

	async close(): Promise<void> {
		this.closed = true;
		clearInterval(this.watch);
		for (const waiting of this.queue.splice(0)) waiting.reject(new JournalUnavailableError("the journal is closed"));
		await this.drained();
		// close(), not drain(): every write is settled, and drain would wait forever for a server that is gone.
		await this.nc.close().catch(() => undefined);
	}

	private async drain(): Promise<void> {
		try {
			while ((this.queue.length > 0 || this.snapshot !== null) && this.fencedReason === null && !this.closed) {
				const group = this.queue.length > 0 ? this.nextGroup() : [];
				const bodies = group.map((w) => w.bytes);
				const size = bodies.reduce((sum, body) => sum + Buffer.byteLength(body) + 1, 1);
				const limit = this.payloadLimit();
				if (size > limit) {
					// Only a lone record can be this large (groups stop at GROUP_BYTES): waiting would never store it.
					for (const w of group) w.reject(new Error(`a ${w.record.t} record of ${size} bytes is more than one NATS message may carry (${limit} bytes)`));
					continue;
				}
				// An epoch goes alone: its position is its own.
				const part = group[0]?.record.t === "epoch" ? null : this.nextSnapshotPart(limit - size);
				if (group.length === 0 && part === null) {
					this.dropSnapshot(`a part of it is more than one NATS message may carry (${limit} bytes)`);
					continue;
				}
				const seq = await this.store(part ? [...bodies, part.body] : bodies, size);
				if (seq === null) {
					const err = this.fencedReason !== null ? new FencedError(this.instance, this.fencedReason) : new JournalUnavailableError("the journal is closed");
					for (const w of group) w.reject(err);
					return;
				}
				if (group.length > 0) this.apply(group, seq);
				if (part) await this.snapshotPartStored(part);
				await this.startSnapshotIfDue();
			}
		} finally {
			this.dropSnapshot(null);
		}
	}

	/** Stops a snapshot before its last part (fenced, closed, or a part too large): every reader ignores it. */
	private dropSnapshot(why: string | null): void {
		if (this.snapshot === null) return;
		this.snapshot.reader.close();
		this.snapshot = null;
		if (why) this.options.logger.error(`journal snapshot dropped: ${why}`);
	}

	/** The most bytes of records one message may carry. */
	private payloadLimit(): number {
		return (this.nc.info?.max_payload ?? Number.POSITIVE_INFINITY) - HEADER_ROOM;
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

	/**
	 * Publishes records as one message and returns its sequence; null when the instance was fenced
	 * or closed meanwhile. counted: their bytes that count toward the next snapshot.
	 */
	private async store(parts: string[], counted: number): Promise<number | null> {
		const body = `[${parts.join(",")}]`;
		const msgID = `${this.instance}:${this.last}`;
		for (;;) {
			const sentAt = performance.now();
			const outcome = await this.publish(body, msgID);
			if ("stored" in outcome) {
				this.stored(outcome.stored, counted, sentAt);
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
	 * Once enough was written since the last snapshot (twice as much while a view changes), a
	 * snapshot begins: a reader of the store as it is now, and its first part stored alone, so
	 * every write after it comes after that part in the journal.
	 */
	private async startSnapshotIfDue(): Promise<void> {
		const due = Math.max(SNAPSHOT_MIN_BYTES, 2 * this.lastSnapshotBytes);
		if (this.snapshot !== null || this.fencedReason !== null || this.closed) return;
		if (this.bytesSinceSnapshot < (this.snapshotsHeld ? 2 * due : due)) return;
		let reader: SnapshotReader;
		try {
			reader = this.options.target.openSnapshot(SNAPSHOT_PART_BYTES);
		} catch (err) {
			this.bytesSinceSnapshot = 0;
			this.options.logger.warn(`could not read the store for a journal snapshot (${(err as Error).message}); the next one is due later`);
			return;
		}
		this.bytesSinceSnapshot = 0;
		this.snapshot = { reader, begin: 0, parts: 0, bytes: 0, unsent: null };
		const first = this.nextSnapshotPart(this.payloadLimit());
		if (first === null) {
			this.dropSnapshot(`its first part is more than one NATS message may carry (${this.payloadLimit()} bytes)`);
			return;
		}
		const seq = await this.store([first.body], 0);
		if (seq === null) return;
		this.snapshot.begin = seq;
		await this.snapshotPartStored(first);
	}

	/** The snapshot's next part if it fits in room bytes (else it waits for the next publish); null without a snapshot. */
	private nextSnapshotPart(room: number): { body: string; last: boolean } | null {
		const snapshot = this.snapshot;
		if (snapshot === null) return null;
		if (snapshot.unsent === null) {
			let next: ReturnType<SnapshotReader["next"]>;
			try {
				next = snapshot.reader.next();
			} catch (err) {
				this.dropSnapshot(`the store could not be read (${(err as Error).message})`);
				return null;
			}
			if (next === null) return null;
			const record: JournalRecord = { t: "snapshot", begin: snapshot.parts === 0, last: next.last, part: next.part };
			snapshot.unsent = { body: JSON.stringify(record), last: next.last };
			snapshot.parts++;
		}
		return Buffer.byteLength(snapshot.unsent.body) + 1 <= room ? snapshot.unsent : null;
	}

	/** A part is stored; after the last, everything before the first part is purged. */
	private async snapshotPartStored(part: { body: string; last: boolean }): Promise<void> {
		const snapshot = this.snapshot;
		if (snapshot === null) return;
		snapshot.unsent = null;
		snapshot.bytes += part.body.length;
		if (!part.last) return;
		this.snapshot = null;
		this.lastSnapshotBytes = snapshot.bytes;
		const purged = await this.jsm.streams.purge(this.stream, { filter: this.subject, seq: snapshot.begin }).then(
			() => true,
			(err: Error) => {
				this.options.logger.warn(`could not purge the journal before its snapshot (${err.message}); the next snapshot will`);
				return false;
			},
		);
		this.options.logger.info(
			`journal snapshot at ${snapshot.begin}: ${snapshot.bytes} bytes in ${snapshot.parts} parts${purged ? "; what came before it is purged" : ""}`,
		);
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
