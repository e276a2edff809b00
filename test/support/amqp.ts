/**
 * Helpers for tests against the real RabbitMQ: a logger that records lines,
 * closing a connection from the broker's side, and cleanup of what a test declared.
 */
import * as amqp from "amqplib";
import { execFile } from "child_process";
import { promisify } from "util";
import { DurableStore } from "../../lib/durable/durable-store";
import type { Logger } from "../../lib/ingest/connection";
import type { InboxSink } from "../../lib/ingest/consumer";
import { Router } from "../../lib/ingest/router";
import type { Store } from "../../lib/store/store";
import { viewOf } from "../../lib/topology/topology";
import { AMQP_URL, uniqueName } from "./env";
import { tempDir } from "./tmp";

const run = promisify(execFile);

export interface LogLine {
	level: keyof Logger;
	msg: string;
}

/** A Logger that keeps every line; set KEYHIVE_TEST_LOG=1 to also print them. */
export function recordingLogger(): Logger & { lines: LogLine[]; at(level: keyof Logger): string[] } {
	const lines: LogLine[] = [];
	const print = process.env.KEYHIVE_TEST_LOG === "1";
	const log = (level: keyof Logger) => (msg: string) => {
		lines.push({ level, msg });
		if (print) console.log(`[${level}] ${msg}`);
	};
	return {
		lines,
		at: (level) => lines.filter((l) => l.level === level).map((l) => l.msg),
		info: log("info"),
		warn: log("warn"),
		error: log("error"),
		debug: log("debug"),
	};
}

/**
 * Closes, from the broker's side, every connection whose connection_name
 * client property is `name`, as an operator (or a broker restart) would.
 * RabbitMQ 3.10's `name` column is the peer address, so match on client_properties.
 * Resolves with how many were closed.
 */
export async function closeConnectionFromOutside(name: string): Promise<number> {
	const { stdout } = await run("rabbitmqctl", ["list_connections", "pid", "client_properties", "-q", "--no-table-headers"]);
	const pids = stdout
		.split("\n")
		.filter((line) => line.includes(`{"connection_name","${name}"}`))
		.map((line) => line.split("\t")[0]);
	for (const pid of pids) await run("rabbitmqctl", ["close_connection", pid, "closed by a keyhive test"]);
	return pids.length;
}

/** A plain connection and channel for a test to publish raw messages, read queues and clean up. */
export async function openTestChannel(): Promise<{ model: amqp.ChannelModel; channel: amqp.Channel; close(): Promise<void> }> {
	const model = await amqp.connect(AMQP_URL, { clientProperties: { connection_name: uniqueName("helper") } });
	model.on("error", () => undefined);
	const channel = await model.createChannel();
	return { model, channel, close: () => model.close().catch(() => undefined) };
}

/** Deletes queues and exchanges, each on its own channel (a failed delete closes the channel). */
export async function deleteAll(model: amqp.ChannelModel, names: { queues?: string[]; exchanges?: string[] }): Promise<void> {
	for (const queue of names.queues ?? []) {
		const ch = await model.createChannel();
		await ch.deleteQueue(queue).catch(() => undefined);
		await ch.close().catch(() => undefined);
	}
	for (const exchange of names.exchanges ?? []) {
		const ch = await model.createChannel();
		await ch.deleteExchange(exchange).catch(() => undefined);
		await ch.close().catch(() => undefined);
	}
}

/** Everything currently in a queue, taken with basic.get and acked. */
export async function drainQueue(channel: amqp.Channel, queue: string): Promise<amqp.GetMessage[]> {
	const taken: amqp.GetMessage[] = [];
	for (;;) {
		const message = await channel.get(queue, { noAck: true });
		if (message === false) return taken;
		taken.push(message);
	}
}

/**
 * A Store in a fresh temp directory, its local journal, and an inbox sink that routes as
 * lib/node.ts does on a node alone in its view (every row is its own); dispose() closes the
 * store and removes the directory.
 */
export function tempStore(): { store: Store; durable: DurableStore; sink: InboxSink; dispose(): void } {
	const dir = tempDir("keyhive-ingest");
	const store = dir.store("test");
	const durable = DurableStore.local(store);
	const router = new Router({
		self: "test",
		topology: { active: true, view: viewOf(["test"]), state: "ready" },
		durable,
		ship: () => Promise.reject(new Error("a node alone in its view ships nothing")),
		batchRows: 1000,
	});
	const sink: InboxSink = {
		store,
		newEpoch: async () => {
			await durable.stamps.renew();
			return durable.stamps.current;
		},
		stamp: (messages) => durable.stamped(messages),
		route: (rows, epoch) => router.route(rows, epoch),
	};
	return { store, durable, sink, dispose: () => dir.cleanup() };
}
