/**
 * The ingest service's actions: what each takes and what it answers.
 */
import type { ActionParams } from "moleculer";
import type { AppendMessage } from "../store/append";
import type { NoParams } from "./action";

export interface PublishParams {
	messages: AppendMessage[];
}
export const publishParams: ActionParams = { messages: { type: "array", min: 1, items: "object" } };

/**
 * ingest.publish: `published` counts messages sent. Through RabbitMQ an id
 * already seen is dropped later, by the store; straight into the store,
 * duplicates says how many were dropped at once.
 */
export type PublishReply = { via: "rabbitmq"; published: number } | { via: "store"; published: number; duplicates: number };

/** ingest.status: this node's RabbitMQ connection, consumer and outbox relay. */
export interface IngestStatusReply {
	node: string;
	connected: boolean;
	/** The AMQP URL without its password. */
	url: string;
	queue: string;
	deadQueue: string;
	/** null when RabbitMQ cannot be asked. */
	deadQueueDepth: number | null;
	consuming: boolean;
	backpressured: boolean;
	ingested: number;
	duplicates: number;
	deadLettered: number;
	resultsPublished: number;
	outbox: number;
}

export interface IngestActions {
	"ingest.publish": { params: PublishParams; reply: PublishReply };
	"ingest.status": { params: NoParams; reply: IngestStatusReply };
}
