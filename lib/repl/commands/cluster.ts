/**
 * `cluster`: one row per keyhive node, with its processing rate over a second.
 */
import type { ServiceBroker } from "moleculer";
import { readConfig, type KeyhiveConfig } from "../../config";
import { membersOf, nodesOf, tryCall } from "../call";
import { guarded } from "../errors";
import type { CommandDefinition, ReplArgs } from "../command";
import { formatPercent, formatTable, ratePerSecond, ringShare, type Cell } from "../format";
import type { Print } from "../print";

/** How long cluster waits between its two samples of `processed`. */
export const RATE_SAMPLE_MS = 1000;

/**
 * Ring points, which every node must share: the REPL node's own configuration
 * (moleculer.config.ts puts it under `keyhive`), else the environment's.
 */
function ringPointsOf(broker: ServiceBroker): number {
	return ((broker.options as { keyhive?: KeyhiveConfig }).keyhive ?? readConfig()).ringPoints;
}

export async function clusterCommand(broker: ServiceBroker, _args: ReplArgs, print: Print, sampleMs = RATE_SAMPLE_MS): Promise<void> {
	await guarded("cluster", print, async () => {
		const members = await membersOf(broker);
		const nodes = nodesOf(members);
		if (nodes.length === 0) {
			print(`view ${members.view}: no keyhive node answered (no store or worker service is available)`);
			return;
		}
		const sampleWorker = async (nodeID: string) => {
			const worker = await tryCall(broker, "worker.stats", {}, nodeID);
			return { worker, at: Date.now() };
		};
		const first = await Promise.all(
			nodes.map(async (nodeID) => {
				const [state, sample, store] = await Promise.all([
					tryCall(broker, "topology.state", {}, nodeID),
					sampleWorker(nodeID),
					tryCall(broker, "store.stats", {}, nodeID),
				]);
				return { nodeID, state, worker: sample.worker, at: sample.at, store };
			}),
		);
		await new Promise((resolve) => setTimeout(resolve, sampleMs));
		const second = await Promise.all(first.map((row) => sampleWorker(row.nodeID)));

		const share = ringShare(members.members, ringPointsOf(broker));
		const states = new Map<string, string>();
		const rows: Cell[][] = first.map((row, i) => {
			const state = "ok" in row.state ? row.state.ok : null;
			const w1 = "ok" in row.worker ? row.worker.ok : null;
			const later = second[i].worker;
			const w2 = "ok" in later ? later.ok : null;
			const store = "ok" in row.store ? row.store.ok : null;
			const stateText = state ? state.state + (state.view.id !== members.view ? ` (view ${state.view.id})` : "") : "unreachable";
			states.set(row.nodeID, stateText);
			const rate = w1 && w2 ? Math.max(0, ratePerSecond(w2.processed - w1.processed, second[i].at - row.at)) : null;
			const ringFraction = share.get(row.nodeID);
			return [
				row.nodeID + (row.nodeID === broker.nodeID ? " (*)" : ""),
				stateText,
				w1?.actors ?? null,
				w1?.processed ?? null,
				store?.pending ?? null,
				store?.shippedRows ?? null,
				rate === null ? null : Math.round(rate),
				store?.dead ?? null,
				ringFraction === undefined ? null : formatPercent(ringFraction),
			];
		});

		const distinct = [...new Set(states.values())];
		const stateLine = distinct.length === 1 ? distinct[0] : `mixed (${[...states].map(([n, s]) => `${n}: ${s}`).join(", ")})`;
		print(`view ${members.view}  ·  ${members.members.length} member${members.members.length === 1 ? "" : "s"}  ·  state ${stateLine}`);
		const waiting = new Set<string>();
		for (const row of first) if ("ok" in row.state) for (const w of row.state.ok.waitingFor) waiting.add(w);
		if (waiting.size > 0) print(`handoff: waiting for ${[...waiting].sort().join(", ")}`);
		for (const line of formatTable(["node", "state", "actors", "processed", "pending", "shipped", "proc/s", "dead", "ring"], rows, [
			"left",
			"left",
			"right",
			"right",
			"right",
			"right",
			"right",
			"right",
			"right",
		]))
			print(line);
		const unreachable = first.filter((row) => "error" in row.state).map((row) => ("error" in row.state ? row.state.error.message : ""));
		for (const message of unreachable) print(`cluster: ${message}`);
	});
}

export const cluster: CommandDefinition = {
	command: "cluster",
	description: "One row per keyhive node: state, actors, processed, pending, shipped, processed/s (over 1 s), dead, ring share",
	options: [],
	run: clusterCommand,
};
