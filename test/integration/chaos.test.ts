/**
 * The chaos soak in its short CI form: 3 real nodes for 1.5 minutes under load,
 * with seeded scale-outs, graceful scale-ins, SIGKILLs with restarts, stalls past
 * the heartbeat timeout, nodes lost with their disks and RabbitMQ connections
 * closed from outside, then drained and checked (about three minutes in all). The soak runs as its own process, as `npm run chaos`
 * does; its summary is the failure message. KEYHIVE_TEST_LOG=1 streams its output.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as path from "node:path";
import { describe, it } from "node:test";

const ROOT = path.resolve(__dirname, "..", "..");
// Seed 41 plans every kind within 1.5 minutes: close-amqp, lose, scale-out (the lost node's replacement), stall, kill-restart, scale-in, scale-out.
const ARGS = ["--nodes", "3", "--minutes", "1.5", "--seed", "41"];
/** The soak's own hard deadline is 1.5 + 3 minutes; this only catches a soak that ignores it. */
const TIMEOUT_MS = 6 * 60_000;

function runSoak(): Promise<{ code: number | null; signal: NodeJS.Signals | null; output: string }> {
	return new Promise((resolve, reject) => {
		const child = spawn(process.execPath, ["--import", "tsx", path.join("test", "chaos", "soak.ts"), ...ARGS], {
			cwd: ROOT,
			stdio: ["ignore", "pipe", "pipe"],
		});
		let output = "";
		const take = (chunk: Buffer) => {
			output += chunk.toString();
			if (process.env.KEYHIVE_TEST_LOG === "1") process.stdout.write(chunk);
		};
		child.stdout.on("data", take);
		child.stderr.on("data", take);
		const timer = setTimeout(() => child.kill("SIGINT"), TIMEOUT_MS - 30_000);
		child.once("error", (err) => {
			clearTimeout(timer);
			reject(err);
		});
		child.once("close", (code, signal) => {
			clearTimeout(timer);
			resolve({ code, signal, output });
		});
	});
}

/** The summary table and post-mortem the soak prints at the end, or the tail of its output when it never got there. */
function summaryOf(output: string): string {
	const at = output.indexOf("chaos soak summary");
	return at >= 0 ? output.slice(at) : output.split("\n").slice(-60).join("\n");
}

describe("chaos soak (CI form)", () => {
	it(`keeps every check clean through seeded chaos: soak ${ARGS.join(" ")}`, { timeout: TIMEOUT_MS }, async () => {
		const { code, signal, output } = await runSoak();
		assert.equal(code, 0, `the soak exited with ${code ?? signal}:\n${summaryOf(output)}`);
		assert.match(output, /every action carried out\s+PASS/);
		assert.match(output, /no id lost\s+PASS/);
	});
});
