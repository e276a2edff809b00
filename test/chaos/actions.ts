/**
 * Carries out one planned action on the soak cluster and says what happened
 * in one line. Topology actions end with the cluster ready on the expected
 * members; a kill also yields the keys the killed node owned at that moment
 * (their order and counts are exempt from the checks, see verify()).
 */
import * as path from "path";
import { Ring } from "../../lib/ring";
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
	/** kill-restart: keys the killed node owned just before the kill. */
	crashedKeys?: string[];
	/** scale-in: rows and results the leaving node kept (lost for good: it never comes back). */
	leftBehind?: { pending: number; outbox: number; dead: number } | null;
}

/** A graceful leave that takes longer is not graceful (KEYHIVE_LEAVE_TIMEOUT_MS is 30 s): the node is SIGKILLed. */
const LEAVE_LIMIT_MS = 60_000;

export function keyNames(keys: number): string[] {
	return Array.from({ length: keys }, (_, i) => `key_${i + 1}`);
}

async function timed(what: () => Promise<unknown>): Promise<number> {
	const started = Date.now();
	await what();
	return Date.now() - started;
}

export async function carryOut(cluster: SoakCluster, action: Action, keys: number): Promise<Outcome> {
	const steps: string[] = [];
	let crashedKeys: string[] | undefined;
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
				const ring = Ring.of(action.before.map((l) => cluster.id(l)));
				crashedKeys = keyNames(keys).filter((k) => ring.ownerOf(k) === node.nodeID);
				steps.push(`active consumer ${await cluster.activeConsumer()}`);
				const killedAt = new Date().toISOString().slice(11, 23);
				await node.kill();
				steps.push(`SIGKILL at ${killedAt} (${crashedKeys.length} keys exempt)`);
				const without = action.before.filter((l) => l !== action.target);
				steps.push(`ready without it in ${seconds(await timed(() => cluster.ready(without)))}`);
				await sleep(action.downMs ?? 0);
				cluster.start(action.target);
				steps.push(`restarted ${seconds(action.downMs ?? 0)} later; ready in ${seconds(await timed(() => cluster.ready(action.after)))}`);
				return { ok: true, detail: steps.join("; "), crashedKeys };
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
		return { ok: false, detail: steps.join("; "), crashedKeys };
	}
}
