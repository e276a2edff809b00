/**
 * The topology service's actions: what each takes and what it answers.
 */
import type { ActionParams } from "moleculer";
import type { TopologyState } from "../topology/topology";
import type { NoParams } from "./action";

/** A view as a reply carries it. */
export interface ViewReply {
	id: string;
	members: readonly string[];
}

/** topology.state: this node's view of the cluster, asked per node (nodeID). */
export interface TopologyStateReply {
	node: string;
	state: TopologyState;
	view: ViewReply;
	/** The last view this node finished its handoff for. */
	settled: string | null;
	/** Nodes the handoff barrier still waits for. */
	waitingFor: string[];
	lastRehashMs: number;
}

export interface WhoisParams {
	key: string;
}
export const whoisParams: ActionParams = { key: { type: "string", min: 1 } };

/** topology.whois: owner is null while no member owns keys. */
export interface WhoisReply {
	key: string;
	owner: string | null;
	view: string;
	state: TopologyState;
}

/** topology.members: members run the worker service; participants, the store (every keyhive node). */
export interface MembersReply {
	view: string;
	members: readonly string[];
	participants: string[];
}

/** topology.handoff: the view this node has finished handing off for, if any. */
export interface HandoffReply {
	node: string;
	view: string | null;
}

export interface TopologyActions {
	"topology.state": { params: NoParams; reply: TopologyStateReply };
	"topology.whois": { params: WhoisParams; reply: WhoisReply };
	"topology.members": { params: NoParams; reply: MembersReply };
	"topology.handoff": { params: NoParams; reply: HandoffReply };
}
