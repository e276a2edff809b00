/**
 * The one way a service reaches its node's keyhive parts, and the lifecycle
 * every keyhive service shares. The configuration comes from the broker options
 * (moleculer.config.ts puts it under `keyhive`), or from the environment when a
 * broker was made without it.
 */
import type { ServiceBroker } from "moleculer";
import { readConfig, type KeyhiveConfig } from "../lib/config";
import { callAction } from "../lib/contracts";
import { KeyhiveNode, nodeOf, type NodeTransport } from "../lib/node";

/** The event a node broadcasts when it has handed off everything for a view (the topology service listens). */
export const HANDOFF_DONE_EVENT = "keyhive.handoff.done";
const SHIP_TIMEOUT_MS = 30_000;

export function configOf(broker: ServiceBroker): KeyhiveConfig {
	return (broker.options as { keyhive?: KeyhiveConfig }).keyhive ?? readConfig();
}

/** Announcements to every node, shipments to the owner's store service. */
function brokerTransport(broker: ServiceBroker): NodeTransport {
	return {
		announce: (view) => {
			void broker.broadcast(HANDOFF_DONE_EVENT, { node: broker.nodeID, view });
		},
		ship: (nodeID, view, shipment) => callAction(broker, "store.receive", { view, shipment }, { nodeID, timeout: SHIP_TIMEOUT_MS, retries: 0 }),
	};
}

/** Exit code of a node whose instance was taken over: a supervisor starts a new instance (compose restarts it: restart: unless-stopped). */
export const FENCED_EXIT_CODE = 75;
/** How long a fenced node waits for its DISCONNECT to go out before it exits. */
const FENCED_DISCONNECT_MS = 1000;

export function keyhiveNode(broker: ServiceBroker): KeyhiveNode {
	return nodeOf(broker, () => {
		const node = new KeyhiveNode(configOf(broker), broker.nodeID, broker.getLogger("keyhive"), brokerTransport(broker));
		// Fenced, it holds nothing that counts and must not hand anything off: it goes at once (RabbitMQ requeues what it held).
		node.onFenced(() => {
			// Peers drop it (and fail what they asked of it) now, not after a heartbeat timeout or a call's timeout.
			const disconnect = broker.transit ? broker.transit.disconnect() : Promise.resolve();
			const atMost = new Promise((resolve) => setTimeout(resolve, FENCED_DISCONNECT_MS));
			void Promise.race([disconnect, atMost]).finally(() => process.exit(FENCED_EXIT_CODE));
		});
		return node;
	});
}

const stoppingOnce = new WeakSet<ServiceBroker>();

/**
 * Moleculer's broker.stop() runs every service's stopped again on each call, and a REPL node
 * gets up to two: the exit command and then the REPL closing at the end of its input, or
 * Ctrl-C from the terminal and again forwarded by npm. Later calls wait for the first.
 */
function stopOnce(broker: ServiceBroker): void {
	if (stoppingOnce.has(broker)) return;
	stoppingOnce.add(broker);
	const stop = broker.stop.bind(broker);
	let stopping: Promise<void> | null = null;
	broker.stop = () => (stopping ??= stop());
}

/**
 * Mixed into every keyhive service: its broker stops once; at start the node checks its
 * services are all loaded; the first service to stop stops the node (once), the others wait for it.
 */
export const KeyhiveLifecycle = {
	created(this: { broker: ServiceBroker }) {
		stopOnce(this.broker);
	},
	async started(this: { broker: ServiceBroker }) {
		const node = keyhiveNode(this.broker);
		node.checkServices(this.broker.services.map((service) => service.name));
		await node.open();
	},
	stopped(this: { broker: ServiceBroker }) {
		return keyhiveNode(this.broker).stop();
	},
};
