/**
 * Broker options for every keyhive node. Everything a deployment changes comes
 * from the environment (lib/config.ts checks it); a bad value stops the node
 * here with one line that names the variable.
 */
import * as os from "os";
import type { BrokerOptions, ServiceBroker } from "moleculer";
import { ConfigError, readConfig, type KeyhiveConfig } from "./lib/config";
import { isNatsAuthError, natsAuthMessage, natsOptions } from "./lib/nats";
import { startRepl } from "./lib/repl/start";

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
		transporter: config.transporter ? { type: "NATS", options: natsOptions(config.transporter) } : null,
		logger: { type: "Console", options: { formatter: "short", colors: process.stdout.isTTY === true } },
		logLevel: config.logLevel as BrokerOptions["logLevel"],
		heartbeatInterval: config.heartbeatIntervalS,
		heartbeatTimeout: config.heartbeatTimeoutS,
		requestTimeout: 30_000,
		metrics: {
			enabled: config.metricsPort > 0,
			reporter: config.metricsPort > 0 ? [{ type: "Prometheus", options: { port: config.metricsPort, path: "/metrics" } }] : [],
		},
		keyhive: config,
		// Modules with onStateChange(from, to, view), loaded by the topology service.
		keyhiveListeners: [],
	};
}

const config = configOrExit();
// moleculer-runner, after loading this file, replaces every root option whose upper-cased name is
// set in the environment with the raw string: a raw TRANSPORTER would undo natsOptions(), and a
// tls:// one is an "Invalid transporter type" crash that prints the URL, password included.
// readConfig has read and checked it, so it leaves the environment here.
delete process.env.TRANSPORTER;

export default {
	...brokerOptions(config),
	// Moleculer retries a refused connection every 5 s forever; refused credentials will not work
	// on the next try either, so the node stops with one line and exit code 1 instead.
	created(broker: ServiceBroker) {
		broker.localBus.on("$transporter.error", ({ error }: { error: unknown }) => {
			if (!isNatsAuthError(error)) return;
			console.error(natsAuthMessage(config.transporter!, error));
			process.exit(1);
		});
		// moleculer-runner --repl (npm start, bin/repl) calls this once the broker has started. keyhive's
		// commands, and their takeover of moleculer-repl's built-in `load`, come in only then.
		broker.repl = () => startRepl(broker);
	},
};
