/**
 * Publishes messages into the inbox with publisher confirms: the REPL's `load`
 * and the tests use it. When it resolves, the broker has every message.
 */
import type { ConfirmChannel } from "amqplib";
import type { AmqpConnection } from "./connection";
import { reasonOf } from "./connection";

export interface OutgoingMessage {
	key: string;
	payload: string;
	/** Becomes the AMQP messageId: the store dedupes by it. */
	id: string;
}

/** Messages published between two waits for confirms (and progress reports). */
const CONFIRM_EVERY = 1000;

/**
 * Publishes to `queue` (which must exist: keyhive's ingest declares it with its
 * arguments) with the key in header `keyHeader`. Resolves with the number
 * published; rejects when not connected, when the queue is missing, or when
 * the broker refuses a message.
 */
export async function publishBatch(
	connection: AmqpConnection,
	queue: string,
	messages: OutgoingMessage[],
	onProgress?: (published: number, total: number) => void,
	keyHeader = "key",
): Promise<number> {
	const model = connection.current;
	if (!model) throw new Error(`RabbitMQ is not connected (${connection.shownUrl}); nothing was published`);
	const channel = await model.createConfirmChannel();
	// Failures surface as rejected operations below; without a listener an "error" event would be thrown.
	channel.on("error", () => undefined);
	try {
		try {
			await channel.checkQueue(queue);
		} catch (err) {
			throw new Error(`queue "${queue}" is not there (${reasonOf(err)}): start a keyhive node, its ingest declares it`);
		}
		let published = 0;
		for (let start = 0; start < messages.length; start += CONFIRM_EVERY) {
			for (const m of messages.slice(start, start + CONFIRM_EVERY)) {
				const buffered = channel.sendToQueue(queue, Buffer.from(m.payload), {
					persistent: true,
					messageId: m.id,
					headers: { [keyHeader]: m.key },
				});
				if (!buffered) await drained(channel);
			}
			await channel.waitForConfirms();
			published = Math.min(messages.length, start + CONFIRM_EVERY);
			onProgress?.(published, messages.length);
		}
		return published;
	} finally {
		await channel.close().catch(() => undefined);
	}
}

/** Waits for the socket buffer to empty (sendToQueue returned false), or for the channel to close. */
function drained(channel: ConfirmChannel): Promise<void> {
	return new Promise((resolve) => {
		const done = () => {
			channel.off("drain", done);
			channel.off("close", done);
			resolve();
		};
		channel.once("drain", done);
		channel.once("close", done);
	});
}
