/**
 * topology: the cluster manager. Members are the available nodes running the
 * worker service, as Moleculer discovery sees them; every connected keyhive
 * node takes part in the handoff barrier.
 */
import * as path from "path";
import type { Context, Service, ServiceBroker } from "moleculer";
import type { TopologyParticipant, TopologyState, View } from "../lib/topology/topology";
import {
	callAction,
	whoisParams,
	type HandoffReply,
	type MembersReply,
	type TopologyStateReply,
	type ViewReply,
	type WhoisParams,
	type WhoisReply,
} from "../lib/contracts";
import { METRICS } from "../lib/metrics";
import { HANDOFF_DONE_EVENT, KeyhiveLifecycle, keyhiveNode } from "./keyhive";

const MEMBER_SERVICE = "worker";
/**
 * Node metadata that marks a keyhive node. A stopping node announces an empty
 * service list before it hands off, but keeps its metadata, so a node that
 * starts meanwhile still counts it among the nodes its barrier waits for.
 */
const PARTICIPANT_MARK = "keyhive";
/** The parts of Moleculer's registry that send this node's INFO again and look for silent peers (not in its typings). */
interface RegistryInternals {
	regenerateLocalRawInfo(incSeq: boolean): unknown;
	discoverer: { sendLocalNodeInfo(): Promise<void>; checkRemoteNodes(): void };
}

/** Node metadata naming the node's journal instance: a journal no available node names is taken over. */
const INSTANCE_MARK = "keyhiveInstance";
const POLL_MS = 250;

interface TopologyThis extends Service {
	keyhiveNodes: Set<string>;
	pollTimer?: NodeJS.Timeout;
	metricsTimer?: NodeJS.Timeout;
	refresh(): void;
	sampleMetrics(): void;
	askWaiting(): Promise<void>;
}

/** Listener modules from moleculer.config.ts (`keyhive` options → `listeners`), paths relative to the working directory. */
function loadListeners(broker: ServiceBroker): TopologyParticipant[] {
	const names = (broker.options as { keyhiveListeners?: (string | TopologyParticipant)[] }).keyhiveListeners ?? [];
	return names.map((entry) => {
		if (typeof entry !== "string") return entry;
		const loaded = require(path.resolve(entry));
		return (loaded.default ?? loaded) as TopologyParticipant;
	});
}

function describe(view: View): ViewReply {
	return { id: view.id, members: view.members };
}

/** Schemas are typed by their handlers' `this`; moleculer-runner loads the default export. */
const TopologyService = {
	name: "topology",
	mixins: [KeyhiveLifecycle],

	settings: {},

	actions: {
		state: {
			handler(this: TopologyThis): TopologyStateReply {
				const node = keyhiveNode(this.broker);
				const t = node.topology;
				return {
					node: node.nodeID,
					state: t.state,
					view: describe(t.view),
					settled: t.settledView?.id ?? null,
					waitingFor: t.waitingFor(),
					lastRehashMs: t.lastRehashMs,
				};
			},
		},
		whois: {
			params: whoisParams,
			handler(this: TopologyThis, ctx: Context<WhoisParams>): WhoisReply {
				const t = keyhiveNode(this.broker).topology;
				return { key: ctx.params.key, owner: t.ownerOf(ctx.params.key), view: t.view.id, state: t.state };
			},
		},
		members: {
			handler(this: TopologyThis): MembersReply {
				const t = keyhiveNode(this.broker).topology;
				return { view: t.view.id, members: t.view.members, participants: [...this.keyhiveNodes].sort() };
			},
		},
		/** Which view this node has finished handing off for (peers ask while they wait). */
		handoff: {
			visibility: "public",
			handler(this: TopologyThis): HandoffReply {
				const node = keyhiveNode(this.broker);
				return { node: node.nodeID, view: node.topology.doneFor() ?? null };
			},
		},
	},

	events: {
		"$node.connected"(this: TopologyThis) {
			this.refresh();
		},
		"$node.updated"(this: TopologyThis) {
			this.refresh();
		},
		"$node.disconnected"(this: TopologyThis) {
			this.refresh();
		},
		"$services.changed"(this: TopologyThis) {
			this.refresh();
		},
		[HANDOFF_DONE_EVENT](this: TopologyThis, ctx: Context<{ node: string; view: string }>) {
			keyhiveNode(this.broker).topology.handoffDone(ctx.params.node, ctx.params.view);
		},
	},

	methods: {
		/** Members and participants from the registry. */
		refresh(this: TopologyThis) {
			const node = keyhiveNode(this.broker);
			const available = this.broker.registry.getNodeList({ onlyAvailable: true, withServices: false }) as { id: string; metadata?: Record<string, unknown> }[];
			const keyhive = available.filter((n) => n.metadata?.[PARTICIPANT_MARK] === true);
			this.keyhiveNodes = new Set(keyhive.map((n) => n.id));
			const advertised = (n: (typeof keyhive)[number]) => {
				const instance = n.metadata?.[INSTANCE_MARK];
				return typeof instance === "string" ? instance : null;
			};
			node.setLiveNodes(new Map(keyhive.map((n) => [n.id, advertised(n)])));
			const instances = keyhive.map(advertised).filter((i): i is string => i !== null);
			const services = this.broker.registry.getServiceList({ onlyAvailable: true, skipInternal: true }) as {
				name: string;
				nodeID: string;
			}[];
			const members = services.filter((s) => s.name === MEMBER_SERVICE).map((s) => s.nodeID);
			node.topology.update(members, this.keyhiveNodes, instances.sort().join(","));
		},

		/** Copies the node's figures into Moleculer's metrics (Prometheus reporter). */
		sampleMetrics(this: TopologyThis) {
			const node = keyhiveNode(this.broker);
			for (const metric of METRICS) {
				const value = metric.read(node);
				if (typeof value === "number") this.broker.metrics.set(metric.name, value);
				else for (const [label, v] of Object.entries(value)) this.broker.metrics.set(metric.name, v, { [metric.labelNames![0]]: label });
			}
		},

		/** Asks the nodes the barrier still waits for; covers announcements a node missed. */
		async askWaiting(this: TopologyThis) {
			const t = keyhiveNode(this.broker).topology;
			if (t.state !== "rehashing") return;
			const answering = new Set(
				(this.broker.registry.getServiceList({ onlyAvailable: true }) as { name: string; nodeID: string }[])
					.filter((s) => s.name === "topology")
					.map((s) => s.nodeID),
			);
			await Promise.all(
				t
					.waitingFor()
					.filter((id) => id !== this.broker.nodeID && answering.has(id))
					.map(async (nodeID) => {
						try {
							const reply = await callAction(this.broker, "topology.handoff", {}, { nodeID, timeout: 1000 });
							if (reply.view) t.handoffDone(reply.node, reply.view);
						} catch {
							// A node that is stopping or gone answers nothing; discovery will drop it.
						}
					}),
			);
		},
	},

	created(this: TopologyThis) {
		this.keyhiveNodes = new Set();
		// In every INFO packet this node sends, the one sent while stopping included (node.metadata is this object).
		this.broker.metadata[PARTICIPANT_MARK] = true;
		const node = keyhiveNode(this.broker);
		node.addListener({
			onStateChange: (from: TopologyState, to: TopologyState, view: View) => {
				void this.broker.broadcast("keyhive.topology.state", { node: node.nodeID, from, to, view: describe(view) });
			},
		});
		for (const listener of loadListeners(this.broker)) node.addListener(listener);
		if (this.broker.isMetricsEnabled()) {
			for (const m of METRICS) {
				const common = { name: m.name, description: m.description, labelNames: m.labelNames };
				if (m.type === "counter") this.broker.metrics.register({ ...common, type: "counter" });
				else this.broker.metrics.register({ ...common, type: "gauge" });
			}
		}
	},

	async started(this: TopologyThis) {
		const node = keyhiveNode(this.broker);
		await node.open();
		if (node.instance) {
			this.broker.metadata[INSTANCE_MARK] = node.instance;
			// Peers hear of the instance now, and never again from an INFO cached without it.
			const registry = this.broker.registry as unknown as RegistryInternals;
			registry.regenerateLocalRawInfo(true);
			await registry.discoverer.sendLocalNodeInfo();
		}
		// A node that has not heard its peers yet would believe it is alone and own every key.
		await new Promise((resolve) => setTimeout(resolve, node.config.discoveryMs));
		this.refresh();
		node.topology.start();
		const discoverer = (this.broker.registry as unknown as RegistryInternals).discoverer;
		let lastPoll = performance.now();
		this.pollTimer = setInterval(() => {
			// Moleculer looks for silent peers only once per heartbeat timeout, which makes a lost node
			// known up to twice the timeout after its last heartbeat; looking each poll keeps it near once.
			// A late poll means the event loop was held (a stall, a long step): the heartbeats that came
			// meanwhile are not read yet, so it looks at the next one.
			const now = performance.now();
			if (now - lastPoll < 2 * POLL_MS) discoverer.checkRemoteNodes();
			lastPoll = now;
			void this.askWaiting();
		}, POLL_MS);
		if (this.broker.isMetricsEnabled()) this.metricsTimer = setInterval(() => this.sampleMetrics(), 1000);
	},

	stopped(this: TopologyThis) {
		if (this.pollTimer) clearInterval(this.pollTimer);
		if (this.metricsTimer) clearInterval(this.metricsTimer);
	},
};

export default TopologyService;
