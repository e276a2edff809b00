/**
 * keyhive's metrics: what each one means and where its value comes from.
 * The values are read from the node's parts once a second; the topology
 * service hands them to Moleculer's metrics module (Prometheus reporter).
 */
import type { KeyhiveNode } from "./node";
import type { TopologyState } from "./topology/topology";

export interface MetricDefinition {
	name: string;
	type: "counter" | "gauge";
	description: string;
	labelNames?: string[];
	read(node: KeyhiveNode): number | Record<string, number>;
}

const STATES: TopologyState[] = ["down", "assembling", "rehashing", "ready", "stopping", "stopped"];

export const METRICS: MetricDefinition[] = [
	{
		name: "keyhive.messages.ingested",
		type: "counter",
		description: "Messages taken from RabbitMQ into this node's store",
		read: (n) => n.ingest?.ingested ?? 0,
	},
	{
		name: "keyhive.messages.appended",
		type: "counter",
		description: "Messages stored by this node from ingest or actions",
		read: (n) => n.store.counts.appended,
	},
	{
		name: "keyhive.messages.duplicates",
		type: "counter",
		description: "Messages dropped because their id was pending or processed here",
		read: (n) => n.store.counts.duplicates,
	},
	{
		name: "keyhive.messages.rejected",
		type: "counter",
		description: "Bad deliveries sent to the dead-letter queue with a reason",
		read: (n) => n.ingest?.deadLettered ?? 0,
	},
	{ name: "keyhive.rows.shipped", type: "counter", description: "Rows handed off to their owner", read: (n) => n.shipper.shippedRows },
	{ name: "keyhive.rows.received", type: "counter", description: "Rows taken from other nodes", read: (n) => n.store.counts.received },
	{ name: "keyhive.messages.processed", type: "counter", description: "Messages performed and committed", read: (n) => n.runtime?.processed ?? 0 },
	{
		name: "keyhive.performs.failed",
		type: "counter",
		description: "Performs that threw, timed out or could not commit",
		read: (n) => n.runtime?.failures ?? 0,
	},
	{ name: "keyhive.messages.dead", type: "counter", description: "Messages dead-lettered after their last attempt", read: (n) => n.runtime?.deadLettered ?? 0 },
	{
		name: "keyhive.rows.pending",
		type: "gauge",
		description: "Rows in this node's store waiting to be performed or shipped",
		read: (n) => n.store.pendingCount,
	},
	{ name: "keyhive.actors", type: "gauge", description: "Actors this node owns and holds", read: (n) => n.runtime?.stats().actors ?? 0 },
	{ name: "keyhive.performs.inflight", type: "gauge", description: "Performs running now", read: (n) => n.runtime?.stats().busy ?? 0 },
	{
		name: "keyhive.scheduler.lag.p99",
		type: "gauge",
		description: "Timer-wheel lag p99 (ms) over the last interval",
		read: (n) => n.runtime?.takeLag().p99 ?? 0,
	},
	{
		name: "keyhive.rehash.duration",
		type: "gauge",
		description: "Duration of the last rehash, from new view to settled (ms)",
		read: (n) => n.topology.lastRehashMs,
	},
	{
		name: "keyhive.ingest.backpressure",
		type: "gauge",
		description: "1 while the node holds deliveries because too many rows are pending",
		read: (n) => (n.ingest?.backpressured ? 1 : 0),
	},
	{
		name: "keyhive.topology.state",
		type: "gauge",
		description: "1 for this node's current topology state, 0 for the others",
		labelNames: ["state"],
		read: (n) => Object.fromEntries(STATES.map((s) => [s, n.topology.state === s ? 1 : 0])),
	},
];
