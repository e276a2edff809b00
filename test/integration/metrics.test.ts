/**
 * The Prometheus endpoint of a real node exports every keyhive metric, and
 * the figures move when messages are performed.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { ServiceBroker } from "moleculer";
import { METRICS } from "../../lib/metrics";
import { startNode } from "../support/broker";
import { AMQP_URL, freePort, uniqueName } from "../support/env";
import { tempDir } from "../support/tmp";
import { waitFor } from "../support/wait";
import { deleteQueues } from "../support/traffic";

const prometheusName = (name: string) => name.replace(/\./g, "_");

async function scrape(port: number): Promise<string> {
	const res = await fetch(`http://127.0.0.1:${port}/metrics`);
	assert.equal(res.status, 200);
	return res.text();
}

function metricValue(text: string, name: string): number | null {
	const line = text.split("\n").find((l) => l.startsWith(`${prometheusName(name)}{`));
	return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : null;
}

describe("metrics", () => {
	const name = uniqueName("metrics");
	let broker: ServiceBroker;
	let port: number;

	before(async () => {
		port = await freePort();
		broker = await startNode("metrics", {
			KEYHIVE_DATA_DIR: tempDir(name).dir,
			KEYHIVE_METRICS_PORT: String(port),
			KEYHIVE_QUEUE: `${name}.inbox`,
			KEYHIVE_RESULTS_QUEUE: `${name}.processed`,
			AMQP_URL,
		});
	});
	after(async () => {
		await broker.stop();
		await deleteQueues(AMQP_URL, `${name}.inbox`, `${name}.processed`);
	});

	it("exports every metric README lists, and processed follows the work done", async () => {
		await broker.call("store.append", { messages: Array.from({ length: 50 }, (_, i) => ({ key: `key_${(i % 5) + 1}`, payload: "x" })) });
		const text = await waitFor(
			async () => {
				const t = await scrape(port);
				return metricValue(t, "keyhive.messages.processed") === 50 ? t : null;
			},
			{ timeoutMs: 10_000, message: "processed = 50 on /metrics" },
		);
		for (const metric of METRICS) assert.ok(text.includes(`${prometheusName(metric.name)}{`), `${metric.name} is exported`);
		assert.equal(metricValue(text, "keyhive.messages.appended"), 50);
		assert.equal(metricValue(text, "keyhive.rows.pending"), 0);
		assert.equal(metricValue(text, "keyhive.actors"), 1000);
		assert.match(text, /keyhive_topology_state\{[^}]*state="ready"\} 1/);
	});
});
