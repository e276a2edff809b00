/**
 * `actor <id>`: one actor as its owner node sees it.
 */
import type { ServiceBroker } from "moleculer";
import { call } from "../call";
import { requiredText, type CommandDefinition, type ReplArgs } from "../command";
import { guarded } from "../errors";
import { formatCount, formatDuration, formatTable, showValue } from "../format";
import type { Print } from "../print";

export async function actorCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	await guarded("actor", print, async () => {
		const id = requiredText(args, "id");
		const info = await call(broker, "worker.get", { id });
		if (info === null || info === undefined) {
			print(`no actor ${id}`);
			return;
		}
		const lines = formatTable(
			["field", "value"],
			[
				["id", info.id],
				["payload", showValue(info.payload, 80)],
				["timeout", info.timeout > 0 ? `${formatCount(info.timeout)} ms` : "none (performs on messages only)"],
				["node", info.node],
				["busy", info.busy ? "yes" : "no"],
				["pending", formatCount(info.pending)],
				["last perform", info.lastPerformAgoMs === null ? "never" : `${formatDuration(info.lastPerformAgoMs)} ago`],
			],
			["left", "left"],
		);
		for (const line of lines) print(line);
	});
}

export const actor: CommandDefinition = {
	command: "actor <id>",
	description: "Show actor <id> as its owner node sees it: payload, timeout, busy, pending messages, last perform",
	options: [],
	run: actorCommand,
};
