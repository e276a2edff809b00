/**
 * The chaos soak: a real keyhive cluster (node processes on the local NATS and
 * RabbitMQ) under a steady keyed load, scaled out and in, SIGKILLed and
 * restarted, its RabbitMQ connections closed from outside, at seeded random
 * times; then drained and checked: nothing lost, nothing performed twice,
 * every key in order, no key on two nodes at once.
 *
 *   node --import tsx test/chaos/soak.ts --nodes 4 --minutes 3 [--seed N] [--rate R] [--keys K]
 *
 * Exit status: 0 clean, 1 a check failed (the temp dir is kept), 2 bad arguments.
 */
import { carryOut } from "./actions";
import { ArgsError, parseArgs, USAGE, type SoakArgs } from "./args";
import { evaluate, table, traces, type CheckRow } from "./checks";
import { sleep } from "../support/wait";
import { Clock, seconds, SoakCluster } from "./harness";
import { ACTION_KINDS, ChaosPlan, nodeName, type ActionKind } from "./plan";
import { locate } from "./postmortem";
import { Prng, randomSeed } from "./prng";

/** After the chaos phase: this long for the drain, checks and cleanup before the hard deadline kills everything. */
const HARD_DEADLINE_EXTRA_MS = 3 * 60_000;
/** The drain gives up this long before the hard deadline (time for the checks and a graceful cleanup)... */
const DRAIN_MARGIN_MS = 50_000;
/** ...or after this long without a single new result. */
const DRAIN_STALL_MS = 60_000;
const PROGRESS_EVERY_MS = 30_000;

function argsOrExit(): SoakArgs {
	try {
		const args = parseArgs(process.argv.slice(2));
		if (args.help) {
			console.log(USAGE);
			process.exit(0);
		}
		return args;
	} catch (err) {
		if (err instanceof ArgsError) {
			console.error(`chaos: ${err.message}`);
			process.exit(2);
		}
		throw err;
	}
}

async function main(): Promise<number> {
	const args = argsOrExit();
	const seed = args.seed ?? randomSeed();
	const clock = new Clock();
	const cluster = new SoakCluster({ actors: args.actors });
	const hardDeadline = clock.startedAt + args.minutes * 60_000 + HARD_DEADLINE_EXTRA_MS;
	clock.log(
		`chaos soak: seed ${seed} (repeat with --seed ${seed}), ${args.nodes} nodes (up to ${args.nodes + 2}), ${args.minutes} min, ` +
			`${args.rate} msg/s over ${args.keys} keys, actions ${args.kinds.join(",")}`,
	);
	clock.log(`namespace ${cluster.namespace}, nodeIDs c<N>-${cluster.tag}, temp dir ${cluster.dir}`);

	// Everything is bounded: past the hard deadline, kill all and fail.
	let aborting = false;
	const abort = (why: string, code: number) => {
		if (aborting) return;
		aborting = true;
		clock.log(`${why}: killing every node; data, logs and perform log kept in ${cluster.dir}`);
		cluster.killAll();
		const exit = setTimeout(() => process.exit(code), 10_000);
		void cluster
			.close(true, 2000)
			.catch(() => undefined)
			.finally(() => {
				clearTimeout(exit);
				process.exit(code);
			});
	};
	const hardTimer = setTimeout(() => abort(`FAIL: hard deadline (${args.minutes} min + 3 min) passed`, 1), hardDeadline - Date.now());
	process.once("SIGINT", () => abort("interrupted", 130));
	process.once("SIGTERM", () => abort("terminated", 143));

	const done: Record<ActionKind, number> = { "scale-out": 0, "scale-in": 0, "kill-restart": 0, "close-amqp": 0, stall: 0, lose: 0 };
	const liveness: string[] = [];
	const leftBehind: string[] = [];
	let failed = false;
	let progress: NodeJS.Timeout | undefined;
	try {
		await cluster.open();

		// c1 first: its ingest takes RabbitMQ's single-active-consumer slot before any other node consumes.
		const initial = Array.from({ length: args.nodes }, (_, i) => nodeName(i + 1));
		let t = Date.now();
		cluster.start(initial[0]);
		await cluster.ready([initial[0]]);
		await cluster.consuming(initial[0]);
		for (const name of initial.slice(1)) cluster.start(name);
		await cluster.ready(initial);
		clock.log(`cluster ready: ${initial.join(" ")} in ${seconds(Date.now() - t)}`);

		await cluster.startLoad(args.rate, args.keys);
		const chaosStart = Date.now();
		const chaosEnd = chaosStart + args.minutes * 60_000;
		clock.log(`load started; chaos until ${clock.stamp(chaosEnd).slice(1, -1)}`);
		progress = setInterval(() => {
			const published = cluster.published.length;
			clock.log(
				`load: published ${published}, performed ${cluster.performedCount()} (${cluster.results.results.length} result lines); running ${cluster.running().join(" ")}`,
			);
		}, PROGRESS_EVERY_MS);

		const plan = new ChaosPlan(new Prng(seed), { initialNodes: args.nodes, kinds: args.kinds });
		for (;;) {
			const action = plan.next();
			if (!action || Date.now() + action.delayMs >= chaosEnd) break;
			await sleep(action.delayMs);
			if (aborting) break;
			const at = Date.now();
			const outcome = await carryOut(cluster, action);
			if (outcome.leftBehind && (outcome.leftBehind.pending > 0 || outcome.leftBehind.outbox > 0)) {
				leftBehind.push(`${action.target}: ${outcome.leftBehind.pending} pending, ${outcome.leftBehind.outbox} unpublished results`);
			} else if (action.kind === "scale-in" && outcome.leftBehind === null) {
				leftBehind.push(`${action.target}: store unreadable after the leave`);
			}
			clock.log(
				`#${action.seq} ${action.kind} ${action.target} (began ${clock.stamp(at).slice(1, -1)}): ${outcome.detail} → running ${action.after.join(" ")}`,
			);
			if (!outcome.ok) {
				liveness.push(`#${action.seq} ${action.kind} ${action.target}`);
				break;
			}
			done[action.kind]++;
		}
		if (liveness.length === 0) await sleep(chaosEnd - Date.now());
		clearInterval(progress);

		// Drain: every published id must come back on the results queue.
		t = Date.now();
		await cluster.stopLoad();
		const published = cluster.published;
		clock.log(`load stopped: ${published.length} messages published in ${seconds(t - chaosStart)}; draining`);
		const drainDeadline = hardDeadline - DRAIN_MARGIN_MS;
		let last = -1;
		let lastChange = Date.now();
		let lastPrint = 0;
		for (;;) {
			const performed = cluster.performedCount();
			if (performed !== last) {
				last = performed;
				lastChange = Date.now();
			}
			const doneDraining = performed >= published.length;
			if (doneDraining || Date.now() - lastPrint >= 5000) {
				clock.log(`drain: ${performed}/${published.length} ids have results (${published.length - performed} to go)`);
				lastPrint = Date.now();
			}
			if (doneDraining || aborting) break;
			if (Date.now() > drainDeadline || Date.now() - lastChange > DRAIN_STALL_MS) {
				clock.log(
					`drain: giving up after ${seconds(Date.now() - t)} (${Date.now() > drainDeadline ? "deadline" : `no new result for ${seconds(DRAIN_STALL_MS)}`})`,
				);
				break;
			}
			await sleep(250);
		}
		// Late duplicates (a second perform, a republish) would arrive now: give them a moment.
		await sleep(2000);

		// Checks.
		const input = { published, results: cluster.results.results, performs: cluster.performs() };
		const evaluation = evaluate(input);
		const rows: CheckRow[] = [
			...evaluation.rows,
			{
				name: "every action carried out",
				status: liveness.length === 0 ? "PASS" : "FAIL",
				detail: liveness.length === 0 ? `${Object.values(done).reduce((a, b) => a + b, 0)} actions, cluster ready after each` : liveness.join(", "),
			},
			{
				name: "graceful leaves kept nothing",
				status: leftBehind.length === 0 ? "PASS" : "FAIL",
				detail: leftBehind.length === 0 ? `${done["scale-in"]} leaves, nothing left in their stores` : leftBehind.join("; "),
			},
			{
				name: "load flowed",
				status: published.length >= 0.5 * args.rate * args.minutes * 60 ? "PASS" : "FAIL",
				detail: `${published.length} published, expected about ${Math.round(args.rate * args.minutes * 60)}`,
			},
		];
		failed = rows.some((r) => r.status === "FAIL");

		console.log("");
		console.log(`chaos soak summary (seed ${seed}, ${args.nodes} nodes, ${args.minutes} min, ${seconds(clock.elapsed())} in all)`);
		console.log(
			table(
				["action", "done"],
				ACTION_KINDS.map((k) => [k, String(done[k])]),
			),
		);
		console.log("");
		const v = evaluation.verdict;
		console.log(
			`messages: ${v.published} published, ${evaluation.performedIds} performed (distinct ids with a result), ` +
				`${v.results} result lines, ${v.republished} republished, ${input.performs.length} performs logged`,
		);
		console.log("");
		console.log(
			table(
				["check", "result", "detail"],
				rows.map((r) => [r.name, r.status, r.detail]),
			),
		);
		if (failed) {
			const lines = traces(input, evaluation);
			if (lines.length > 0) console.log(`\ntraces (n@node per message in publish order):\n${lines.join("\n")}`);
			if (evaluation.overlaps.length > 0) {
				console.log("\noverlapping performs:");
				for (const [a, b] of evaluation.overlaps.slice(0, 5)) {
					console.log(`  ${a.key}: ${a.node} ${a.start.toFixed(3)}–${a.end.toFixed(3)} and ${b.node} ${b.start.toFixed(3)}–${b.end.toFixed(3)}`);
				}
			}
			const missing = v.missing.slice(0, 10);
			if (missing.length > 0) {
				console.log("\nwhere the first missing ids are:");
				for (const [id, where] of locate(cluster.storeFiles(), missing)) console.log(`  ${id}: ${where.length > 0 ? where.join("; ") : "in no store"}`);
			}
		}
	} catch (err) {
		failed = true;
		clock.log(`FAIL: the soak itself failed: ${(err as Error).stack ?? err}`);
	} finally {
		clearInterval(progress);
	}

	if (aborting) return 1;
	const keep = failed || args.keep;
	clock.log(`cleanup: stopping ${cluster.running().length} nodes, deleting queues${keep ? "" : ", removing the temp dir"}`);
	await cluster.close(keep).catch((err) => clock.log(`cleanup: ${(err as Error).message}`));
	clearTimeout(hardTimer);
	if (keep) clock.log(`kept for post-mortem: ${cluster.dir} (<nodeID>.log, <nodeID>/<nodeID>.sqlite, performs.log)`);
	clock.log(failed ? "FAIL" : "PASS");
	return failed ? 1 : 0;
}

main().then(
	(code) => process.exit(code),
	(err) => {
		console.error(err);
		process.exit(1);
	},
);
