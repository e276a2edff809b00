/**
 * The one way a service reaches its node's keyhive parts. The configuration
 * comes from the broker options (moleculer.config.ts puts it under `keyhive`),
 * or from the environment when a broker was made without it.
 */
import type { ServiceBroker } from "moleculer";
import { readConfig, type KeyhiveConfig } from "../lib/config";
import { KeyhiveNode, nodeOf } from "../lib/node";

export function configOf(broker: ServiceBroker): KeyhiveConfig {
	return ((broker.options as { keyhive?: KeyhiveConfig }).keyhive) ?? readConfig();
}

export function keyhiveNode(broker: ServiceBroker): KeyhiveNode {
	return nodeOf(broker, () => new KeyhiveNode(configOf(broker), broker.nodeID, broker.getLogger("keyhive")));
}
