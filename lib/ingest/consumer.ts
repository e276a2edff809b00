/**
 * Consumes the inbox queue into the stores of the keys' owners.
 *
 * Every node consumes the same queue with single active consumer on: one node
 * at a time gets the deliveries, in queue order, which is what keeps the order
 * of a key's messages across nodes. A channel that starts receiving takes a new
 * epoch first, and stamps its rows in delivery order within it, so rows of a
 * later consumer sort after every row of an earlier one (lib/durable/stamps.ts).
 *
 * The invariant: a delivery is acked only once its row is durable at its key's
 * owner. Deliveries are batched; a batch is validated, its bad messages are
 * dead-lettered (awaiting the broker's confirms), its good ones are routed to
 * their owners (lib/ingest/router.ts), and only when every owner has made them
 * durable is the whole batch acked with one multiple ack. A crash in between
 * leaves the deliveries unacked: the broker redelivers them and every store drops
 * the ids it already holds. A batch that cannot be stored now (a full disk,
 * JetStream unavailable, no view to route by) is held unacked, in order, and
 * tried again until it can.
 */
import type { ChannelModel, ConfirmChannel, ConsumeMessage, Options } from "amqplib";
import type { KeyhiveConfig } from "../config";
import { FencedError, isRetryLater } from "../durable/journal";
import type { EnteringRow } from "../durable/records";
import { isDiskFull, type NewMessage, type Store } from "../store/store";
import { type AmqpConnection, type Logger, reasonOf } from "./connection";
import { type RejectReason, validateDelivery, type ValidationRules } from "./validate";
import { failpoint } from "../failpoint";

export type InboxSettings = ValidationRules & Pick<KeyhiveConfig, "queue" | "prefetch" | "batchSize" | "batchMs" | "highWater" | "lowWater">;

/** How often pendingCount is polled while back pressure holds deliveries. */
const PRESSURE_POLL_MS = 50;
/** Pause before reopening a channel the broker closed while the connection stayed up. */
const REOPEN_DELAY_MS = 1000;
/** How often a batch that could not be stored (no room, JetStream unavailable) is tried again. */
const NO_ROOM_RETRY_MS = 1000;
/** How often a batch with no owner to take it (a view changing) is tried again. */
const REROUTE_MS = 200;

/** Where a consumer's rows go: this node's stamps and router. */
export interface InboxSink {
	/** The node's working store: its pending rows (back pressure) and its file (for messages). */
	readonly store: Store;
	/** A new epoch for a channel that starts receiving. */
	newEpoch(): Promise<number>;
	/** Stamps in the order given, in the current epoch. */
	stamp(messages: NewMessage[]): Promise<EnteringRow[]>;
	/** Makes rows durable at their owners. */
	route(rows: EnteringRow[], epoch: number): Promise<{ stored: number; duplicates: number }>;
}
/**
 * amqplib encodes message properties into a 64 KiB scratch buffer. Original
 * headers whose JSON is larger than this may not fit, so such a dead letter
 * carries only the reason header (its body is kept whole).
 */
const MAX_FORWARDED_HEADER_JSON = 32 * 1024;

export const REASON_HEADER = "x-keyhive-reason";

export function deadLetterExchangeOf(queue: string): string {
	return `${queue}.dlx`;
}

export function deadLetterQueueOf(queue: string): string {
	return `${queue}.dead`;
}

export class InboxConsumer {
	private readonly connection: AmqpConnection;
	private readonly sink: InboxSink;
	private readonly store: Store;
	/** The channel whose epoch was taken, and that epoch. */
	private epochOf: ConfirmChannel | undefined;
	private epoch = 0;
	private readonly settings: InboxSettings;
	private readonly logger: Logger;
	private channel: ConfirmChannel | undefined;
	/** Deliveries of the current channel not yet committed, in delivery order. */
	private buffer: ConsumeMessage[] = [];
	private batchTimer: NodeJS.Timeout | undefined;
	private pressureTimer: NodeJS.Timeout | undefined;
	private flushing: Promise<void> | undefined;
	/** A flush was asked for while one ran; set so deliveries that arrived in its last turn are not stranded. */
	private flushAgain = false;
	private holding = false;
	/** A validated batch that could not be stored: retried as it is (its bad deliveries are dead-lettered already). */
	private unstored: Validated | undefined;
	/** Why the held batch could not be stored (logged once until it is). */
	private holdReason: string | null = null;
	private retryTimer: NodeJS.Timeout | undefined;
	private stopping = false;
	/** Set when a declaration met other arguments on the broker: reopening would only fail again on this connection. */
	private misdeclared = false;
	private counts = { ingested: 0, duplicates: 0, deadLettered: 0 };

	constructor(connection: AmqpConnection, sink: InboxSink, settings: InboxSettings, logger: Logger) {
		this.connection = connection;
		this.sink = sink;
		this.store = sink.store;
		this.settings = settings;
		this.logger = logger;
	}

	/** Messages appended to the store. */
	get ingested(): number {
		return this.counts.ingested;
	}

	/** Deliveries whose id the store already held (redeliveries). */
	get duplicates(): number {
		return this.counts.duplicates;
	}

	/** Bad deliveries published to <queue>.dead. */
	get deadLettered(): number {
		return this.counts.deadLettered;
	}

	/** True while pendingCount is above highWater and deliveries are held unacked. */
	get backpressured(): boolean {
		return this.holding;
	}

	/** True when no batch will be committed now: stopped, or held by back pressure. */
	get paused(): boolean {
		return this.stopping || this.holding || this.holdReason !== null;
	}

	/** True while a channel is consuming the queue. */
	get isConsuming(): boolean {
		return this.channel !== undefined;
	}

	/** Consumes on every (re)connect of the connection. */
	start(): void {
		this.connection.onConnected((model) => this.open(model));
	}

	/** Looks at pendingCount now instead of at the next poll, e.g. right after rows were deleted. */
	recheck(): void {
		if (!this.underPressure()) this.flushSoon();
	}

	/**
	 * Graceful stop: commits and acks what is already batched, then keeps every
	 * later delivery unacked. The channel stays open so this node stays the active
	 * consumer (another node taking over now would see later messages first);
	 * close() then hands the held deliveries back to the queue in their order.
	 */
	async stop(): Promise<void> {
		this.stopping = true;
		this.flushSoon();
		while (this.flushing) await this.flushing;
	}

	/** Closes the channel: the broker requeues every delivery it held. */
	async close(): Promise<void> {
		this.stopping = true;
		clearTimeout(this.batchTimer);
		clearInterval(this.pressureTimer);
		clearTimeout(this.retryTimer);
		const channel = this.channel;
		this.forgetChannel();
		await channel?.close().catch(() => undefined);
	}

	private async open(model: ChannelModel): Promise<void> {
		// A stopped consumer holding a channel would keep the active-consumer slot from the other nodes.
		if (this.stopping) return;
		this.misdeclared = false;
		const { queue, prefetch } = this.settings;
		const channel = await model.createConfirmChannel();
		// The "close" that follows every channel error is where recovery happens.
		channel.on("error", (err: Error) => this.logger.debug(`inbox channel error: ${reasonOf(err)}`));
		channel.on("close", () => this.channelClosed(channel, model));
		try {
			await declareInbox(channel, queue);
		} catch (err) {
			if (!(err instanceof DeclarationConflict)) throw err;
			this.misdeclared = true;
			this.logger.error(`not consuming "${queue}": ${err.message}`);
			return;
		}
		await channel.prefetch(prefetch);
		if (this.stopping) {
			await channel.close().catch(() => undefined);
			return;
		}
		// Set before consume(): deliveries can arrive in the same turn as consume-ok.
		this.channel = channel;
		await channel.consume(queue, (delivery) => this.received(channel, delivery));
		this.logger.info(`consuming "${queue}" (prefetch ${prefetch}, batches of ${this.settings.batchSize})`);
	}

	private received(channel: ConfirmChannel, delivery: ConsumeMessage | null): void {
		if (channel !== this.channel) return;
		if (delivery === null) {
			// The broker cancelled us, e.g. the queue was deleted: a fresh channel declares it again.
			this.logger.warn(`RabbitMQ cancelled the consumer of "${this.settings.queue}"; reopening`);
			this.abandon(channel);
			return;
		}
		// After stop() deliveries stay unacked in the channel; close() requeues them.
		if (this.stopping) return;
		this.buffer.push(delivery);
		if (this.buffer.length >= this.settings.batchSize) this.flushSoon();
		else this.batchTimer ??= setTimeout(() => this.flushSoon(), this.settings.batchMs);
	}

	private flushSoon(): void {
		clearTimeout(this.batchTimer);
		this.batchTimer = undefined;
		if (this.flushing) {
			this.flushAgain = true;
			return;
		}
		this.flushing = this.flushBuffer().finally(() => {
			this.flushing = undefined;
			if (this.flushAgain) {
				this.flushAgain = false;
				this.flushSoon();
			}
		});
	}

	private async flushBuffer(): Promise<void> {
		while ((this.unstored || this.buffer.length > 0) && this.channel && !this.retryTimer && !this.underPressure()) {
			const channel = this.channel;
			let validated = this.unstored;
			this.unstored = undefined;
			try {
				validated ??= await this.deadLetterBad(channel, this.buffer.splice(0, this.settings.batchSize));
				// The channel died while we waited: its deliveries come back (and their bad ones are dead-lettered again).
				if (channel !== this.channel) return;
				await this.routeAndAck(channel, validated);
			} catch (err) {
				if (channel !== this.channel) return; // the channel died: its deliveries come back on the next one
				if (err instanceof FencedError) {
					this.abandon(channel);
					return;
				}
				if (validated) {
					this.holdAndRetry(validated, err);
					return;
				}
				this.logger.error(`could not dead-letter a batch of deliveries (${reasonOf(err)}); requeueing them`);
				this.abandon(channel);
				return;
			}
		}
	}

	/**
	 * Nothing is acked and the deliveries stay in this channel, in order (this node stays the
	 * active consumer, so no other node takes later messages of the same keys first).
	 */
	private holdAndRetry(validated: Validated, err: unknown): void {
		this.unstored = validated;
		const retryMs = isRetryLater(err) ? NO_ROOM_RETRY_MS : REROUTE_MS;
		const reason = isDiskFull(err)
			? `disk full: ${this.store.file} has no room for ${validated.good.length} messages (SQLITE_FULL)`
			: `${validated.good.length} messages cannot be stored now (${reasonOf(err)})`;
		if (this.holdReason === null || (isRetryLater(err) && this.holdReason !== reason)) {
			this.logger[isRetryLater(err) ? "error" : "warn"](`${reason}; ingest stopped, nothing acked, trying again every ${retryMs / 1000} s`);
		}
		this.holdReason = reason;
		this.retryTimer = setTimeout(() => {
			this.retryTimer = undefined;
			this.flushSoon();
		}, retryMs);
	}

	/** Validates a batch and dead-letters its bad deliveries, awaiting the broker's confirms. */
	private async deadLetterBad(channel: ConfirmChannel, batch: ConsumeMessage[]): Promise<Validated> {
		const good: NewMessage[] = [];
		const bad: { delivery: ConsumeMessage; reason: RejectReason }[] = [];
		for (const delivery of batch) {
			const result = validateDelivery(delivery, this.settings);
			if ("message" in result) good.push(result.message);
			else bad.push({ delivery, reason: result.reason });
		}
		if (bad.length > 0) {
			const exchange = deadLetterExchangeOf(this.settings.queue);
			for (const { delivery, reason } of bad) {
				channel.publish(exchange, delivery.fields.routingKey, delivery.content, deadLetterOptions(delivery, reason));
			}
			// Confirmed before the append: from the append on nothing may await until the ack.
			await channel.waitForConfirms();
		}
		return { batch, good, bad };
	}

	/** Routes the batch's rows to their owners and, once every one is durable there, acks the batch. */
	private async routeAndAck(channel: ConfirmChannel, validated: Validated): Promise<void> {
		if (this.epochOf !== channel) {
			this.epoch = await this.sink.newEpoch();
			this.epochOf = channel;
		}
		// Stamped once: a batch tried again keeps its stamps.
		validated.rows ??= await this.sink.stamp(validated.good);
		const { stored, duplicates } = await this.sink.route(validated.rows, this.epoch);
		failpoint("ingest.after-commit");
		// The channel died meanwhile: its deliveries come back, and the owners drop the ids they now hold.
		if (channel !== this.channel) return;
		const { batch, bad } = validated;
		channel.ack(batch[batch.length - 1], true);
		if (this.holdReason !== null) {
			this.holdReason = null;
			this.logger.info(`ingest resumed: the held deliveries are stored and acked`);
		}
		this.counts.ingested += stored;
		this.counts.duplicates += duplicates;
		this.counts.deadLettered += bad.length;
		for (const { reason } of bad) this.logger.debug(`dead-lettered a delivery of "${this.settings.queue}": ${reason}`);
	}

	/** Hysteresis: hold above highWater, take deliveries again at lowWater. */
	private underPressure(): boolean {
		const pending = this.store.pendingCount;
		const { highWater, lowWater } = this.settings;
		if (!this.holding && pending > highWater) {
			this.holding = true;
			this.pressureTimer = setInterval(() => this.recheck(), PRESSURE_POLL_MS);
			this.logger.info(`${pending} rows pending (high water ${highWater}): holding deliveries until ${lowWater}`);
		} else if (this.holding && pending <= lowWater) {
			this.holding = false;
			clearInterval(this.pressureTimer);
			this.pressureTimer = undefined;
			this.logger.info(`${pending} rows pending (low water ${lowWater}): taking deliveries again`);
		}
		return this.holding;
	}

	private channelClosed(channel: ConfirmChannel, model: ChannelModel): void {
		if (channel === this.channel) this.forgetChannel();
		if (this.stopping) return;
		// Only reopen when the connection outlived the channel; a new connection reopens by itself.
		setTimeout(() => {
			if (!this.stopping && !this.misdeclared && !this.channel && this.connection.current === model) {
				this.open(model).catch((err) => this.logger.error(`could not reopen the inbox channel: ${reasonOf(err)}`));
			}
		}, REOPEN_DELAY_MS);
	}

	/** Closes a channel to hand its deliveries back; its close event then schedules a fresh one. */
	private abandon(channel: ConfirmChannel): void {
		if (channel === this.channel) this.forgetChannel();
		void channel.close().catch(() => undefined);
	}

	/** Deliveries of a closed channel are the broker's again: drop them here. */
	private forgetChannel(): void {
		this.channel = undefined;
		this.buffer = [];
		this.unstored = undefined;
		clearTimeout(this.retryTimer);
		this.retryTimer = undefined;
		clearTimeout(this.batchTimer);
		this.batchTimer = undefined;
	}
}

/** A batch checked and its bad deliveries dead-lettered, ready to append and ack. */
interface Validated {
	batch: ConsumeMessage[];
	good: NewMessage[];
	/** The good ones stamped (on the first try). */
	rows?: EnteringRow[];
	bad: { delivery: ConsumeMessage; reason: RejectReason }[];
}

/** Something keyhive declares exists on the broker with other arguments: only an operator can resolve that. */
class DeclarationConflict extends Error {}

async function declareInbox(channel: ConfirmChannel, queue: string): Promise<void> {
	const exchange = deadLetterExchangeOf(queue);
	const dead = deadLetterQueueOf(queue);
	await declare(`exchange "${exchange}" (fanout, durable)`, `rabbitmqadmin delete exchange name=${exchange}`, () =>
		channel.assertExchange(exchange, "fanout", { durable: true }),
	);
	await declare(`queue "${dead}" (durable)`, `rabbitmqctl delete_queue ${dead}`, () => channel.assertQueue(dead, { durable: true }));
	await channel.bindQueue(dead, exchange, "");
	await declare(`queue "${queue}" (durable, x-single-active-consumer: true, x-dead-letter-exchange: "${exchange}")`, `rabbitmqctl delete_queue ${queue}`, () =>
		channel.assertQueue(queue, {
			durable: true,
			arguments: { "x-single-active-consumer": true, "x-dead-letter-exchange": exchange },
		}),
	);
}

/** Runs one declaration; the broker's PRECONDITION_FAILED becomes a sentence that says what to do. */
async function declare(what: string, removal: string, assert: () => Promise<unknown>): Promise<void> {
	try {
		await assert();
	} catch (err) {
		const code = typeof err === "object" && err !== null ? (err as { code?: unknown }).code : undefined;
		if (code !== 406) throw err;
		throw new DeclarationConflict(
			`keyhive declares ${what}, but it already exists with other arguments (${reasonOf(err)}). ` +
				`Delete it (${removal}; its messages go with it) and restart.`,
		);
	}
}

/**
 * The original body and properties plus the reason. Left out: userId (the
 * broker checks it against the publishing user) and expiration (a dead letter
 * must not expire).
 */
function deadLetterOptions(delivery: ConsumeMessage, reason: RejectReason): Options.Publish {
	const p = delivery.properties;
	const original: Record<string, unknown> = p.headers ?? {};
	let forwardable = false;
	try {
		forwardable = Buffer.byteLength(JSON.stringify(original)) <= MAX_FORWARDED_HEADER_JSON;
	} catch {
		// not representable: send the reason alone
	}
	return {
		persistent: true,
		contentType: p.contentType,
		contentEncoding: p.contentEncoding,
		correlationId: p.correlationId,
		replyTo: p.replyTo,
		messageId: p.messageId,
		timestamp: p.timestamp,
		type: p.type,
		appId: p.appId,
		priority: p.priority,
		headers: { ...(forwardable ? original : {}), [REASON_HEADER]: reason },
	};
}
