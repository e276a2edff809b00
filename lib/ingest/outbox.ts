/**
 * Publishes the store's outbox to the results queue.
 *
 * Results are written to the outbox in the same transaction as the perform
 * that made them; this relay publishes them on a confirm channel and deletes
 * them only after the broker's confirms. A crash or connection loss between
 * the confirm and the delete publishes those entries again: a result may be
 * delivered twice (consumers dedupe by messageId, the performed message's id:
 * see lib/actors/result-id.ts), it is never lost. Entries
 * it has published and awaits confirms for are its own: the shipper does not
 * move them to another node until they are confirmed or given back.
 */
import type { ChannelModel, ConfirmChannel } from "amqplib";
import { RESULT_ID_HEADER } from "../actors/result-id";
import type { KeyhiveConfig } from "../config";
import type { DurableStore } from "../durable/durable-store";
import type { OutboxEntry, Store } from "../store/store";
import { type AmqpConnection, type Logger, reasonOf } from "./connection";

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
/** How often a delete of confirmed entries that failed (a full disk) is tried again. */
const DELETE_RETRY_MS = 1000;

export class OutboxRelay {
	private readonly connection: AmqpConnection;
	private readonly store: Store;
	private readonly durable: DurableStore;
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
	/** Outbox seqs published on the current channel and not confirmed yet. */
	private readonly unconfirmed = new Set<number>();
	/** The entries published on this channel, by seq, until confirmed. */
	private readonly sent = new Map<number, OutboxEntry>();
	/** Confirmed entries waiting for their batched delete. */
	private done: OutboxEntry[] = [];
	/** Set while deleting confirmed entries fails; they stay taken meanwhile: neither published again nor shipped. */
	private deleteFailing = false;
	private confirmWaiter: (() => void) | undefined;

	constructor(connection: AmqpConnection, durable: DurableStore, settings: OutboxSettings, logger: Logger) {
		this.connection = connection;
		this.durable = durable;
		this.store = durable.store;
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
			if (this.unconfirmed.size >= MAX_UNCONFIRMED) {
				await new Promise<void>((resolve) => (this.confirmWaiter = resolve));
				continue;
			}
			const entries = this.store.takeOutbox(this.batchSize);
			if (entries.length === 0) return;
			// A node that stalled past the heartbeat timeout may have been taken over: it publishes nothing then.
			const owner = await this.durable.journal.confirmOwner().then(
				() => true,
				() => false,
			);
			if (!owner || channel !== this.channel || this.closed) {
				this.store.giveBack(entries.map((e) => e.seq));
				return;
			}
			for (const entry of entries) {
				this.unconfirmed.add(entry.seq);
				this.sent.set(entry.seq, entry);
				channel.sendToQueue(this.queue, Buffer.from(entry.body), publishOptions(entry), (err: unknown) => this.confirmed(channel, entry.seq, err));
			}
			// Let confirms and commits in; the loop comes back for what arrived meanwhile.
			await new Promise((resolve) => setImmediate(resolve));
		}
	}

	private confirmed(channel: ConfirmChannel, seq: number, err: unknown): void {
		if (channel !== this.channel) return;
		if (err) {
			this.logger.error(`the broker refused a result for "${this.queue}" (${reasonOf(err)}); publishing again on a new channel`);
			void channel.close().catch(() => undefined);
			return;
		}
		this.unconfirmed.delete(seq);
		const entry = this.sent.get(seq);
		this.sent.delete(seq);
		if (entry) {
			this.done.push(entry);
			if (this.done.length === 1) setImmediate(() => void this.deleteDone());
		}
		const waiter = this.confirmWaiter;
		this.confirmWaiter = undefined;
		waiter?.();
	}

	private async deleteDone(): Promise<void> {
		const entries = this.done;
		this.done = [];
		if (entries.length === 0 || this.closed) return;
		try {
			await this.durable.published(entries);
		} catch (err) {
			this.done = entries.concat(this.done);
			if (!this.deleteFailing) {
				this.logger.error(
					`could not delete ${entries.length} confirmed results from the outbox (${reasonOf(err)}); trying again every ${DELETE_RETRY_MS / 1000} s`,
				);
			}
			this.deleteFailing = true;
			setTimeout(() => void this.deleteDone(), DELETE_RETRY_MS);
			return;
		}
		if (this.deleteFailing) {
			this.deleteFailing = false;
			this.logger.info("confirmed results are deleted from the outbox again");
		}
		this.publishedCount += entries.length;
	}

	private channelClosed(channel: ConfirmChannel, model: ChannelModel): void {
		if (channel !== this.channel) return;
		this.channel = undefined;
		// Whatever was not confirmed goes again, on the next channel or (when its key moved) from another node.
		this.store.giveBack([...this.unconfirmed]);
		this.unconfirmed.clear();
		this.sent.clear();
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
