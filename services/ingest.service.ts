/**
 * ingest: RabbitMQ in and out. Consumes the inbox into this node's store
 * (ack after commit), publishes the outbox to the results queue, and lets the
 * REPL publish with or without a broker.
 */
import type * as amqp from "amqplib";
import type { Context, Service } from "moleculer";
import { AmqpConnection } from "../lib/ingest/connection";
import { InboxConsumer, deadLetterQueueOf } from "../lib/ingest/consumer";
import { OutboxRelay } from "../lib/ingest/outbox";
import { publishBatch } from "../lib/ingest/publisher";
import { validateAppend } from "../lib/store/append";
import { publishParams, type IngestStatusReply, type PublishParams, type PublishReply } from "../lib/contracts";
import { KeyhiveLifecycle, keyhiveNode } from "./keyhive";

const DRAIN_OUTBOX_MS = 5000;

interface IngestThis extends Service {
	connection: AmqpConnection;
	consumer: InboxConsumer;
	relay: OutboxRelay;
}

const IngestService = {
	name: "ingest",
	mixins: [KeyhiveLifecycle],

	settings: {},

	actions: {
		/**
		 * Publishes through RabbitMQ (with confirms) when connected and the key travels in a header, else
		 * straight into this node's store.
		 * `published` counts messages sent; an id already seen is dropped later, by the store.
		 */
		publish: {
			params: publishParams,
			async handler(this: IngestThis, ctx: Context<PublishParams>): Promise<PublishReply> {
				const node = keyhiveNode(this.broker);
				const messages = validateAppend({ messages: ctx.params.messages });
				const source = node.config.keySource;
				// Consuming means the inbox is declared; before that a publish would find no queue. A key taken from
				// the routing key cannot travel this way: sent straight to the queue, every message's routing key is the queue's name.
				if (source.kind === "header" && this.connection.isConnected && this.consumer.isConsuming) {
					const published = await publishBatch(
						this.connection,
						node.config.queue,
						messages.map((m) => ({ key: m.key, payload: m.payload, id: m.id })),
						undefined,
						source.name,
					);
					return { via: "rabbitmq", published };
				}
				const result = await node.route(messages);
				return { via: "store", published: result.stored, duplicates: result.duplicates };
			},
		},
		status: {
			async handler(this: IngestThis): Promise<IngestStatusReply> {
				const node = keyhiveNode(this.broker);
				const deadQueue = deadLetterQueueOf(node.config.queue);
				return {
					node: node.nodeID,
					connected: this.connection.isConnected,
					url: this.connection.shownUrl,
					queue: node.config.queue,
					deadQueue,
					deadQueueDepth: await queueDepth(this.connection, deadQueue),
					consuming: this.consumer.isConsuming,
					backpressured: this.consumer.backpressured,
					ingested: this.consumer.ingested,
					duplicates: this.consumer.duplicates,
					deadLettered: this.consumer.deadLettered,
					resultsPublished: this.relay.published,
					outbox: node.store.outboxCount,
				};
			},
		},
	},

	created(this: IngestThis) {
		const node = keyhiveNode(this.broker);
		const logger = this.logger;
		this.connection = new AmqpConnection(node.config.amqpUrl, { name: `keyhive ${node.nodeID}`, logger });
		this.consumer = new InboxConsumer(this.connection, node.inboxSink(), node.config, logger);
		this.relay = new OutboxRelay(this.connection, node.durable, { resultsQueue: node.config.resultsQueue }, logger);
		node.store.onOutbox(() => this.relay.nudge());
		node.attachIngest(this.consumer);
		// Stop taking deliveries before the handoff, so nothing arrives that would stay behind.
		node.onLeave(() => this.consumer.stop());
		// After the leave: publish the results it committed, then disconnect, before the store closes.
		node.onStop(async () => {
			// The handoff moved every result with its key; what is left had no other node to go to, or was in flight.
			if (!(await this.relay.drain(DRAIN_OUTBOX_MS))) {
				logger.warn(`${node.store.outboxCount} results could not be published to "${node.config.resultsQueue}" and stay in ${node.store.file}`);
			}
			await this.consumer.close();
			await this.relay.close();
			await this.connection.close();
		});
	},

	started(this: IngestThis) {
		this.consumer.start();
		this.relay.start();
		this.connection.start();
	},
};

/** Messages waiting in a queue, or null when it cannot be asked. */
async function queueDepth(connection: AmqpConnection, queue: string): Promise<number | null> {
	const model = connection.current;
	if (!model) return null;
	let channel: amqp.Channel | undefined;
	try {
		channel = await model.createChannel();
		channel.on("error", () => undefined);
		return (await channel.checkQueue(queue)).messageCount;
	} catch {
		return null;
	} finally {
		await channel?.close().catch(() => undefined);
	}
}

export default IngestService;
