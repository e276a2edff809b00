/**
 * How REPL commands call keyhive's actions: typed by lib/contracts, failures
 * worded by describeCallError.
 */
import type { ServiceBroker } from "moleculer";
import { callAction, type ActionName, type MembersReply, type ParamsOf, type ReplyOf } from "../contracts";
import { describeCallError, ReplError } from "./errors";

/** Timeout of the calls a command makes to every node, so one dead node cannot hang it. */
const PER_NODE_TIMEOUT_MS = 5_000;

/** Calls action (on nodeID, when given); a failure is thrown as a ReplError. */
export async function call<A extends ActionName>(broker: ServiceBroker, action: A, params: ParamsOf<A>, nodeID?: string): Promise<ReplyOf<A>> {
	try {
		const opts = nodeID ? { nodeID, timeout: PER_NODE_TIMEOUT_MS, retries: 0 } : {};
		return await callAction(broker, action, params, opts);
	} catch (err) {
		throw describeCallError(err, action, nodeID);
	}
}

/** Like call, but a failure is a value: per-node columns show "-" or the error instead of failing the command. */
export async function tryCall<A extends ActionName>(
	broker: ServiceBroker,
	action: A,
	params: ParamsOf<A>,
	nodeID?: string,
): Promise<{ ok: ReplyOf<A> } | { error: ReplError }> {
	try {
		return { ok: await call(broker, action, params, nodeID) };
	} catch (err) {
		return { error: err instanceof ReplError ? err : describeCallError(err, action, nodeID) };
	}
}

export async function membersOf(broker: ServiceBroker): Promise<MembersReply> {
	return call(broker, "topology.members", {});
}

/** Every keyhive node of a members reply (participants and members), sorted. */
export function nodesOf(members: MembersReply): string[] {
	return [...new Set([...members.participants, ...members.members])].sort();
}
