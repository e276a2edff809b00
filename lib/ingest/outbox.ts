/**
 * Publishes the store's outbox to the results queue.
 *
 * Results are written to the outbox in the same transaction as the perform
 * that made them; this relay publishes them on a confirm channel and deletes
 * them only after the broker's confirms. A crash or connection loss between
 * the confirm and the delete publishes those entries again: a result may be
 * delivered twice (consumers dedupe by messageId, the performed message's id:
 * see lib/actors/result-id.ts), it is never lost.
 */
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { RESULT_ID_HEADER } from "../actors/result-id";
import type { KeyhiveConfig } from "../config";
import type { OutboxEntry, Store } from "../store/store";
import { AmqpConnection, Logger, reasonOf } from "./connection";

export type OutboxSettings = Pick<KeyhiveConfig, "resultsQueue"> & {
	/** Entries per publish-and-confirm round; default 500. */
	batchSize?: number;
	/** Safety-net poll for entries committed without a nudge(); default 1000 ms. */
	pollMs?: number;
};

const REOPEN_DELAY_MS = 1000;
/** Results published and not yet confirmed, at most. */
const MAX_UNCONFIRMED = 5000;
const DRAIN_POLL_MS = 20;

export class OutboxRelay {
	private readonly connection: AmqpConnection;
	private readonly store: Store;
	private readonly queue: string;
	private readonly batchSize: number;
	private readonly pollMs: number;
	private readonly logger: Logger;
	private channel: ConfirmChannel | undefined;
	private pollTimer: NodeJS.Timeout | undefined;
	private relaying = false;
	/** A nudge came while relaying: look at the outbox once more when the run ends. */
	private nudged = false;
	private closed = false;
	private publishedCount = 0;
	/** Highest outbox seq published on the current channel. */
	private sentUpTo = 0;
	private unconfirmed = 0;
	/** Confirmed seqs waiting for their batched delete. */
	private done: number[] = [];
	private confirmWaiter: (() => void) | undefined;

	constructor(connection: AmqpConnection, store: Store, settings: OutboxSettings, logger: Logger) {
		this.connection = connection;
		this.store = store;
		this.queue = settings.resultsQueue;
		this.batchSize = settings.batchSize ?? 500;
		this.pollMs = settings.pollMs ?? 1000;
		this.logger = logger;
	}

	/** Entries confirmed by the broker and deleted from the outbox. */
	get published(): number {
		return this.publishedCount;
	}

	/** Relays on every (re)connect of the connection. */
	start(): void {
		this.connection.onConnected((model) => this.open(model));
		this.pollTimer = setInterval(() => this.nudge(), this.pollMs);
	}

	/** Publishes soon: call after a commit that wrote to the outbox. */
	nudge(): void {
		if (this.relaying) {
			this.nudged = true;
			return;
		}
		if (!this.channel || this.closed) return;
		this.relaying = true;
		void this.relay().finally(() => {
			this.relaying = false;
			if (this.nudged) {
				this.nudged = false;
				this.nudge();
			}
		});
	}

	/** Waits until the outbox is empty or timeoutMs has passed; true when it is empty. */
	async drain(timeoutMs: number): Promise<boolean> {
		const deadline = Date.now() + timeoutMs;
		this.nudge();
		while (this.store.outboxCount > 0) {
			if (Date.now() >= deadline) return false;
			await new Promise((resolve) => setTimeout(resolve, DRAIN_POLL_MS));
		}
		return true;
	}

	async close(): Promise<void> {
		this.closed = true;
		clearInterval(this.pollTimer);
		const channel = this.channel;
		this.channel = undefined;
		await channel?.close().catch(() => undefined);
	}

	private async open(model: ChannelModel): Promise<void> {
		if (this.closed) return;
		const channel = await model.createConfirmChannel();
		channel.on("error", (err: Error) => this.logger.debug(`outbox channel error: ${reasonOf(err)}`));
		channel.on("close", () => this.channelClosed(channel, model));
		await channel.assertQueue(this.queue, { durable: true });
		if (this.closed) {
			await channel.close().catch(() => undefined);
			return;
		}
		this.channel = channel;
		// A new channel starts from the oldest entry still in the outbox: whatever was not confirmed goes again.
		this.sentUpTo = 0;
		this.unconfirmed = 0;
		this.nudge();
	}

	/**
	 * Publishes every entry not yet sent on this channel without waiting for the
	 * previous ones' confirms (a confirm round trip per batch would put tens of
	 * ms on every result); each confirm marks its entry done, and done entries are
	 * deleted in batches. Entries not confirmed when a channel dies stay in the
	 * outbox and the next channel publishes them again.
	 */
	private async relay(): Promise<void> {
		while (this.channel && !this.closed) {
			const channel = this.channel;
			if (this.unconfirmed >= MAX_UNCONFIRMED) {
				await new Promise<void>((resolve) => (this.confirmWaiter = resolve));
				continue;
			}
			const entries = this.store.outbox(this.batchSize, this.sentUpTo);
			if (entries.length === 0) return;
			for (const entry of entries) {
				this.unconfirmed++;
				channel.sendToQueue(this.queue, Buffer.from(entry.body), publishOptions(entry), (err: unknown) => this.confirmed(channel, entry.seq, err));
			}
			this.sentUpTo = entries[entries.length - 1].seq;
			// Let confirms and commits in; the loop comes back for what arrived meanwhile.
			await new Promise((resolve) => setImmediate(resolve));
		}
	}

	private confirmed(channel: ConfirmChannel, seq: number, err: unknown): void {
		if (channel !== this.channel) return;
		this.unconfirmed--;
		if (err) {
			this.logger.error(`the broker refused a result for "${this.queue}" (${reasonOf(err)}); publishing again on a new channel`);
			void channel.close().catch(() => undefined);
			return;
		}
		this.done.push(seq);
		if (this.done.length === 1) setImmediate(() => this.deleteDone());
		const waiter = this.confirmWaiter;
		this.confirmWaiter = undefined;
		waiter?.();
	}

	private deleteDone(): void {
		const seqs = this.done;
		this.done = [];
		if (seqs.length === 0 || this.closed) return;
		this.store.outboxDone(seqs);
		this.publishedCount += seqs.length;
	}

	private channelClosed(channel: ConfirmChannel, model: ChannelModel): void {
		if (channel !== this.channel) return;
		this.channel = undefined;
		const waiter = this.confirmWaiter;
		this.confirmWaiter = undefined;
		waiter?.();
		// Only reopen when the connection outlived the channel; a new connection reopens by itself.
		setTimeout(() => {
			if (!this.closed && !this.channel && this.connection.current === model) {
				this.open(model).catch((err) => this.logger.error(`could not reopen the outbox channel: ${reasonOf(err)}`));
			}
		}, REOPEN_DELAY_MS);
	}
}

function publishOptions(entry: OutboxEntry) {
	const { [RESULT_ID_HEADER]: resultId, ...headers } = entry.headers ?? {};
	return {
		persistent: true,
		contentType: "application/json",
		messageId: typeof resultId === "string" ? resultId : undefined,
		headers: Object.keys(headers).length > 0 ? headers : undefined,
	};
}
