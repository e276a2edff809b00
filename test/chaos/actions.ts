/**
 * Carries out one planned action on the soak cluster and says what happened
 * in one line. Topology actions end with the cluster ready on the expected
 * members. No key is exempt from the checks: a killed, stalled or lost node's
 * keys are taken over from its journal with their state and order.
 */
import * as path from "path";
import { FENCED_EXIT_CODE } from "../../services/keyhive";
import { closeConnectionFromOutside } from "../support/amqp";
import { sleep } from "../support/wait";
import type { SoakCluster } from "./harness";
import { seconds } from "./harness";
import type { Action } from "./plan";
import { leftovers } from "./postmortem";

export interface Outcome {
	ok: boolean;
	/** What happened, for the action's log line. */
	detail: string;
	/** scale-in: rows and results the leaving node kept (lost for good: it never comes back). */
	leftBehind?: { pending: number; outbox: number; dead: number } | null;
}

/** A graceful leave that takes longer is not graceful (KEYHIVE_LEAVE_TIMEOUT_MS is 30 s): the node is SIGKILLed. */
const LEAVE_LIMIT_MS = 60_000;

async function timed(what: () => Promise<unknown>): Promise<number> {
	const started = Date.now();
	await what();
	return Date.now() - started;
}

export async function carryOut(cluster: SoakCluster, action: Action): Promise<Outcome> {
	const steps: string[] = [];
	try {
		switch (action.kind) {
			case "scale-out": {
				cluster.start(action.target);
				steps.push(`started; ready in ${seconds(await timed(() => cluster.ready(action.after)))}`);
				return { ok: true, detail: steps.join("; ") };
			}
			case "scale-in": {
				const node = cluster.node(action.target);
				steps.push(`active consumer ${await cluster.activeConsumer()}`);
				let code: number | null = null;
				const stopMs = await timed(async () => (code = await node.stop(LEAVE_LIMIT_MS)));
				if (stopMs >= LEAVE_LIMIT_MS) {
					steps.push(`SIGTERM: no exit within ${seconds(LEAVE_LIMIT_MS)}, SIGKILLed`);
					return { ok: false, detail: steps.join("; ") };
				}
				steps.push(`SIGTERM → exited${code === null || code === 0 ? "" : ` with ${code}`} in ${seconds(stopMs)}`);
				cluster.retired.add(action.target);
				const left = leftovers(path.join(node.dataDir, `${node.nodeID}.sqlite`));
				steps.push(left ? `kept ${left.pending} pending, ${left.outbox} unpublished results` : "store unreadable");
				steps.push(`ready in ${seconds(await timed(() => cluster.ready(action.after)))}`);
				return { ok: true, detail: steps.join("; "), leftBehind: left };
			}
			case "kill-restart": {
				const node = cluster.node(action.target);
				steps.push(`active consumer ${await cluster.activeConsumer()}`);
				const killedAt = new Date().toISOString().slice(11, 23);
				await node.kill();
				steps.push(`SIGKILL at ${killedAt}`);
				const without = action.before.filter((l) => l !== action.target);
				steps.push(`ready without it in ${seconds(await timed(() => cluster.ready(without)))}`);
				await sleep(action.downMs ?? 0);
				cluster.start(action.target);
				steps.push(`restarted ${seconds(action.downMs ?? 0)} later; ready in ${seconds(await timed(() => cluster.ready(action.after)))}`);
				return { ok: true, detail: steps.join("; ") };
			}
			case "stall": {
				const node = cluster.node(action.target);
				const without = action.before.filter((l) => l !== action.target);
				node.freeze();
				steps.push(`SIGSTOP at ${new Date().toISOString().slice(11, 23)}`);
				steps.push(`ready without it in ${seconds(await timed(() => cluster.ready(without)))}`);
				node.thaw();
				const code = await node.exited();
				if (code !== FENCED_EXIT_CODE) return { ok: false, detail: [...steps, `SIGCONT: exited with ${code}, not ${FENCED_EXIT_CODE} (fenced)`].join("; ") };
				steps.push(`SIGCONT: exited fenced (${code})`);
				cluster.start(action.target);
				steps.push(`started again; ready in ${seconds(await timed(() => cluster.ready(action.after)))}`);
				return { ok: true, detail: steps.join("; ") };
			}
			case "lose": {
				const node = cluster.node(action.target);
				await node.kill();
				node.deleteData();
				cluster.retired.add(action.target);
				steps.push(`SIGKILL and data dir deleted at ${new Date().toISOString().slice(11, 23)}`);
				steps.push(`ready without it in ${seconds(await timed(() => cluster.ready(action.after)))}`);
				return { ok: true, detail: steps.join("; ") };
			}
			case "close-amqp": {
				steps.push(`active consumer ${await cluster.activeConsumer()}`);
				const closed = await closeConnectionFromOutside(`keyhive ${cluster.id(action.target)}`);
				if (closed === 0) return { ok: false, detail: [...steps, `no RabbitMQ connection named "keyhive ${cluster.id(action.target)}"`].join("; ") };
				steps.push(`closed ${closed} connection${closed > 1 ? "s" : ""}`);
				steps.push(`consuming again in ${seconds(await timed(() => cluster.consuming(action.target)))}`);
				return { ok: true, detail: steps.join("; ") };
			}
		}
	} catch (err) {
		steps.push(`FAILED: ${(err as Error).message}`);
		return { ok: false, detail: steps.join("; ") };
	}
}
