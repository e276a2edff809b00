/**
 * `publish <key> <payload...>`: one message through ingest.publish.
 */
import { randomUUID } from "crypto";
import type { ServiceBroker } from "moleculer";
import { call } from "../call";
import { requiredText, type CommandDefinition, type ReplArgs } from "../command";
import { guarded } from "../errors";
import { formatCount } from "../format";
import type { Print } from "../print";

export async function publishCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	await guarded("publish", print, async () => {
		const key = requiredText(args, "key");
		const payload = requiredText(args, "payload");
		const id = `repl-${randomUUID()}`;
		const reply = await call(broker, "ingest.publish", { messages: [{ id, key, payload }] });
		print(`published ${formatCount(reply.published)} message${reply.published === 1 ? "" : "s"} via ${reply.via} (key ${key}, id ${id})`);
		if (reply.published === 0) print("publish: nothing was stored: that id was already taken (a duplicate)");
	});
}

export const publish: CommandDefinition = {
	command: "publish <key> <payload...>",
	description: "Publish one message for <key> via ingest.publish (RabbitMQ, else straight into the store); <payload> is text or JSON, words joined with spaces",
	options: [],
	run: publishCommand,
};
