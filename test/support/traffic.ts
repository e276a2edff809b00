/**
 * Load for multi-node tests and the chaos soak: a producer publishing keyed
 * messages to the inbox with confirms, and a collector reading the results
 * queue the nodes' outboxes publish to.
 */
import * as amqp from "amqplib";
import type { PublishedMessage, ResultLine } from "./verify";
import { waitFor } from "./wait";

async function waitForQueue(connection: amqp.ChannelModel, queue: string, timeoutMs: number): Promise<void> {
	await waitFor(
		async () => {
			// A failed check closes its channel, so each try gets a fresh one.
			const channel = await connection.createChannel();
			channel.on("error", () => undefined);
			await channel.checkQueue(queue);
			await channel.close();
			return true;
		},
		{ timeoutMs, intervalMs: 200, message: `queue ${queue} to be declared by a node` },
	);
}

export class Producer {
	readonly published: PublishedMessage[] = [];
	private connection: amqp.ChannelModel | null = null;
	private channel: amqp.ConfirmChannel | null = null;
	private steady: NodeJS.Timeout | null = null;
	private counter = 0;
	private inFlight: Promise<void> = Promise.resolve();

	constructor(
		private readonly url: string,
		private readonly queue: string,
		private readonly prefix: string,
	) {}

	async start(timeoutMs = 30_000): Promise<void> {
		this.connection = await amqp.connect(this.url);
		await waitForQueue(this.connection, this.queue, timeoutMs);
		this.channel = await this.connection.createConfirmChannel();
	}

	/** Publishes count messages round-robin over keys, waiting for the broker's confirms. */
	async publish(count: number, keys: number): Promise<void> {
		const channel = this.channel!;
		for (let i = 0; i < count; i++) {
			const n = this.counter++;
			const id = `${this.prefix}-${n}`;
			const key = `key_${(n % keys) + 1}`;
			channel.sendToQueue(this.queue, Buffer.from(JSON.stringify({ n })), { persistent: true, messageId: id, headers: { key } });
			this.published.push({ id, key });
		}
		await channel.waitForConfirms();
	}

	/** Publishes perTick messages every tickMs until stopSteady(). */
	startSteady(perTick: number, tickMs: number, keys: number): void {
		this.steady = setInterval(() => {
			this.inFlight = this.inFlight.then(() => this.publish(perTick, keys));
		}, tickMs);
	}

	async stopSteady(): Promise<void> {
		if (this.steady) clearInterval(this.steady);
		this.steady = null;
		await this.inFlight;
	}

	async close(): Promise<void> {
		await this.stopSteady();
		await this.connection?.close().catch(() => undefined);
	}
}

export class ResultsCollector {
	readonly results: ResultLine[] = [];
	private connection: amqp.ChannelModel | null = null;

	constructor(
		private readonly url: string,
		private readonly queue: string,
	) {}

	async start(): Promise<void> {
		this.connection = await amqp.connect(this.url);
		const channel = await this.connection.createChannel();
		await channel.assertQueue(this.queue, { durable: true });
		await channel.consume(
			this.queue,
			(msg) => {
				if (!msg) return;
				this.results.push(JSON.parse(msg.content.toString()) as ResultLine);
				channel.ack(msg);
			},
			{ noAck: false },
		);
	}

	/** Distinct message ids seen so far. */
	distinctIds(): number {
		return new Set(this.results.map((r) => r.id)).size;
	}

	async close(): Promise<void> {
		await this.connection?.close().catch(() => undefined);
	}
}

/** Deletes the queues and exchange a test's nodes declared. */
export async function deleteQueues(url: string, inbox: string, results: string): Promise<void> {
	const connection = await amqp.connect(url);
	const channel = await connection.createChannel();
	channel.on("error", () => undefined);
	for (const q of [inbox, `${inbox}.dead`, results]) await channel.deleteQueue(q).catch(() => undefined);
	await channel.deleteExchange(`${inbox}.dlx`).catch(() => undefined);
	await connection.close().catch(() => undefined);
}
