/**
 * `dead`: every node's dead letters and RabbitMQ's dead-letter queue; with
 * --requeue, the dead letters go back to pending.
 */
import type { ServiceBroker } from "moleculer";
import { membersOf, nodesOf, tryCall } from "../call";
import { optionsOf, type CommandDefinition, type ReplArgs } from "../command";
import { guarded } from "../errors";
import { formatCount, formatTable, parseInteger, showValue, type Cell } from "../format";
import type { Print } from "../print";

export async function deadCommand(broker: ServiceBroker, args: ReplArgs, print: Print): Promise<void> {
	await guarded("dead", print, async () => {
		const o = optionsOf(args);
		const limit = o.limit === undefined ? undefined : parseInteger(o.limit, "--limit", { min: 1, max: 100_000 });
		const requeue = o.requeue === true || o.requeue === "true";
		const nodes = nodesOf(await membersOf(broker));
		if (nodes.length === 0) print("dead: no keyhive node answered (no store service is available)");

		if (requeue) {
			let total = 0;
			for (const nodeID of nodes) {
				const reply = await tryCall(broker, "store.dead", { ...(limit ? { limit } : {}), requeue: true }, nodeID);
				if ("error" in reply) {
					print(`dead: ${reply.error.message}`);
					continue;
				}
				if (!("requeued" in reply.ok)) {
					print(`dead: store.dead on ${nodeID} listed its dead letters instead of requeueing them`);
					continue;
				}
				total += reply.ok.requeued;
				const dropped = reply.ok.dropped > 0 ? ` (${formatCount(reply.ok.dropped)} already processed, dropped)` : "";
				print(`${nodeID}: requeued ${formatCount(reply.ok.requeued)} dead letter${reply.ok.requeued === 1 ? "" : "s"}${dropped}`);
			}
			print(`requeued ${formatCount(total)} in all; they are pending again and go last in their keys' order`);
		} else {
			const rows: Cell[][] = [];
			let total = 0;
			const notes: string[] = [];
			for (const nodeID of nodes) {
				const reply = await tryCall(broker, "store.dead", limit ? { limit } : {}, nodeID);
				if ("error" in reply) {
					notes.push(`dead: ${reply.error.message}`);
					continue;
				}
				if (!("dead" in reply.ok)) {
					notes.push(`dead: store.dead on ${nodeID} requeued its dead letters instead of listing them`);
					continue;
				}
				total += reply.ok.count;
				if (reply.ok.count > reply.ok.dead.length) notes.push(`${nodeID}: showing ${reply.ok.dead.length} of ${formatCount(reply.ok.count)} (use --limit)`);
				for (const d of reply.ok.dead) {
					rows.push([nodeID, d.id, d.key, d.reason, d.attempts, new Date(d.diedAt).toISOString(), showValue(d.payload, 40)]);
				}
			}
			print(`${formatCount(total)} dead letter${total === 1 ? "" : "s"} in the stores of ${nodes.length} node${nodes.length === 1 ? "" : "s"}`);
			if (rows.length > 0) {
				for (const line of formatTable(["node", "id", "key", "reason", "attempts", "died at", "payload"], rows)) print(line);
			}
			for (const note of notes) print(note);
		}

		const status = await tryCall(broker, "ingest.status", {});
		if ("error" in status) print(`RabbitMQ not connected (${status.error.message})`);
		else if (!status.ok.connected) print("RabbitMQ not connected");
		else {
			const depth = status.ok.deadQueueDepth;
			print(
				`RabbitMQ dead-letter queue ${status.ok.deadQueue}: ${depth === null || depth === undefined ? "unknown" : formatCount(depth)} message${depth === 1 ? "" : "s"}`,
			);
		}
	});
}

export const dead: CommandDefinition = {
	command: "dead",
	description: "List every node's dead letters and RabbitMQ's dead-letter queue depth; --requeue puts them back to pending",
	options: [
		{ option: "--limit <n>", description: "dead letters per node to list or requeue (default 20)" },
		{ option: "--requeue", description: "move up to --limit dead letters per node back to pending (they go last in their key's order)" },
	],
	run: deadCommand,
};
