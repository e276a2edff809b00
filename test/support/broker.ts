/**
 * An in-process keyhive node: a real ServiceBroker with the project's own
 * services and a data dir, for single-node integration tests.
 */
import * as path from "path";
import { ServiceBroker } from "moleculer";
import { readConfig } from "../../lib/config";
import { brokerOptions } from "../../moleculer.config";

const SERVICES = ["store", "topology", "worker", "ingest"].map((name) => path.resolve(__dirname, "..", "..", "services", `${name}.service.ts`));

/** made: told the broker before it starts, so a test can stop one whose start failed. */
export async function startNode(
	nodeID: string,
	env: Record<string, string>,
	services = SERVICES,
	made?: (broker: ServiceBroker) => void,
): Promise<ServiceBroker> {
	const broker = new ServiceBroker({
		...brokerOptions(readConfig({ KEYHIVE_ACTORS: "1000", ...env })),
		nodeID,
		logger: process.env.TEST_LOG ? { type: "Console", options: { formatter: "short" } } : false,
	});
	for (const file of services) broker.loadService(file);
	made?.(broker);
	await broker.start();
	return broker;
}
