/**
 * `whois <key>`: which node owns a key, in which view.
 */
import type { ServiceBroker } from "moleculer";
import { call } from "../call";
import { requiredText, type CommandDefinition, type ReplArgs } from "../command";
import { guarded } from "../errors";
import { formatRecord } from "../format";
import type { Print } from "../print";

export async function whoisCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	await guarded("whois", print, async () => {
		const key = requiredText(args, "key");
		const reply = await call(broker, "topology.whois", { key });
		const owner = reply.owner ?? `nobody (the cluster is ${reply.state}: no member owns keys)`;
		for (const line of formatRecord([
			["key", reply.key],
			["owner", owner],
			["view", reply.view],
			["state", reply.state],
		]))
			print(line);
	});
}

export const whois: CommandDefinition = {
	command: "whois <key>",
	description: "Show which node owns <key>, in which view and cluster state",
	options: [],
	run: whoisCommand,
};
