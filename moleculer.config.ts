/**
 * Broker options for every keyhive node. Everything a deployment changes comes
 * from the environment (lib/config.ts checks it); a bad value stops the node
 * here with one line that names the variable.
 */
import * as os from "os";
import type { BrokerOptions } from "moleculer";
import { ConfigError, readConfig, type KeyhiveConfig } from "./lib/config";
import { replCommands } from "./lib/repl/commands";

function configOrExit(): KeyhiveConfig {
	try {
		return readConfig();
	} catch (err) {
		if (err instanceof ConfigError) {
			console.error(`keyhive: configuration error: ${err.message}`);
			process.exit(1);
		}
		throw err;
	}
}

/** The broker options of a keyhive node with this configuration (tests build in-process nodes with it too). */
export function brokerOptions(config: KeyhiveConfig): BrokerOptions & { keyhive: KeyhiveConfig; keyhiveListeners: string[] } {
	return {
		// Stable across restarts, so a node finds its own SQLite file again; in a container the hostname differs per replica.
		nodeID: config.nodeID ?? os.hostname(),
		namespace: config.namespace,
		transporter: config.transporter ? { type: "NATS", options: { url: config.transporter } } : null,
		logger: { type: "Console", options: { formatter: "short", colors: process.stdout.isTTY === true } },
		logLevel: config.logLevel as BrokerOptions["logLevel"],
		heartbeatInterval: config.heartbeatIntervalS,
		heartbeatTimeout: config.heartbeatTimeoutS,
		requestTimeout: 30_000,
		metrics: {
			enabled: config.metricsPort > 0,
			reporter: config.metricsPort > 0 ? [{ type: "Prometheus", options: { port: config.metricsPort, path: "/metrics" } }] : [],
		},
		replOptions: { customCommands: replCommands },
		keyhive: config,
		// Modules with onStateChange(from, to, view), loaded by the topology service.
		keyhiveListeners: [],
	};
}

export default brokerOptions(configOrExit());
