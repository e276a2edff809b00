/**
 * Shared helpers for keyhive's benchmarks (never timed tests): command-line
 * numbers, heap readings, percentiles, a readable table of figures against
 * targets, and the one JSON line every bench ends with.
 */
import { PerformanceObserver, constants as perfConstants } from "perf_hooks";

// ---- command line -----------------------------------------------------------

/**
 * Checks the command line before a bench starts: --help prints usage and exits 0;
 * a flag that is not one of `known` prints one error line and exits 2.
 */
export function checkArgs(usage: string, known: readonly string[], argv: readonly string[] = process.argv.slice(2)): void {
	if (argv.includes("--help") || argv.includes("-h")) {
		process.stdout.write(`${usage.trim()}\n`);
		process.exit(0);
	}
	for (const arg of argv) {
		if (!arg.startsWith("--")) continue;
		const name = arg.slice(2).split("=")[0];
		if (!known.includes(name)) {
			process.stderr.write(`unknown option --${name}; known: ${known.map((k) => `--${k}`).join(", ")} (--help for usage)\n`);
			process.exit(2);
		}
	}
}

/** The number after --name (or --name=N) on the command line, else fallback. */
export function numberArg(name: string, fallback: number, argv: readonly string[] = process.argv.slice(2)): number {
	for (let i = 0; i < argv.length; i++) {
		const arg = argv[i];
		let raw: string | undefined;
		if (arg === `--${name}`) raw = argv[i + 1];
		else if (arg.startsWith(`--${name}=`)) raw = arg.slice(name.length + 3);
		else continue;
		const value = Number(String(raw).replace(/_/g, ""));
		if (!Number.isFinite(value) || value < 0) throw new Error(`--${name} wants a non-negative number, got ${raw}`);
		return value;
	}
	return fallback;
}

// ---- heap ------------------------------------------------------------------

type Gc = (options?: unknown) => void;

/** global.gc, or a clear error telling how to run the bench. */
export function requireGc(): Gc {
	const gc = (globalThis as { gc?: Gc }).gc;
	if (typeof gc !== "function") throw new Error("run with node --expose-gc (npm run bench:... does)");
	return gc;
}

/** heapUsed after two full collections (the second one collects what the first one's finalizers freed). */
export function heapUsedAfterGc(): number {
	const gc = requireGc();
	gc();
	gc();
	return process.memoryUsage().heapUsed;
}

/** Bytes per item of a heap delta (heapUsedAfterGc readings around building count items). */
export function bytesPer(before: number, after: number, count: number): number {
	return count > 0 ? (after - before) / count : 0;
}

// ---- statistics --------------------------------------------------------------

/** The p-quantile (0..1) of values by nearest rank; values need not be sorted. NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
	if (values.length === 0) return NaN;
	const sorted = [...values].sort((a, b) => a - b);
	const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p * sorted.length)));
	return sorted[rank - 1];
}

export function round(value: number, digits = 1): number {
	if (!Number.isFinite(value)) return value;
	const f = 10 ** digits;
	return Math.round(value * f) / f;
}

/** A promise resolved after ms. */
export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolves when cond() holds, checking every everyMs; rejects after timeoutMs. */
export async function waitFor(cond: () => boolean, timeoutMs: number, everyMs = 1, what = "condition"): Promise<void> {
	const deadline = Date.now() + timeoutMs;
	while (!cond()) {
		if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
		await sleep(everyMs);
	}
}

// ---- garbage collections while something runs -----------------------------------

export interface GcSummary {
	count: number;
	/** Total pause time, ms. */
	totalMs: number;
	maxMs: number;
	/** Pauses of full (mark-compact) collections. */
	majorCount: number;
	majorMs: number;
}

/** Counts GC pauses from now until stop() (perf_hooks "gc" entries). */
export function watchGc(): { stop(): GcSummary } {
	const summary: GcSummary = { count: 0, totalMs: 0, maxMs: 0, majorCount: 0, majorMs: 0 };
	const observer = new PerformanceObserver((list) => {
		for (const entry of list.getEntries()) {
			summary.count++;
			summary.totalMs += entry.duration;
			summary.maxMs = Math.max(summary.maxMs, entry.duration);
			const kind = (entry as unknown as { detail?: { kind?: number } }).detail?.kind;
			if (kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) {
				summary.majorCount++;
				summary.majorMs += entry.duration;
			}
		}
	});
	observer.observe({ entryTypes: ["gc"] });
	return {
		stop() {
			// Entries are delivered asynchronously; take what has arrived.
			observer.disconnect();
			return { ...summary, totalMs: round(summary.totalMs), maxMs: round(summary.maxMs), majorMs: round(summary.majorMs) };
		},
	};
}

// ---- output -------------------------------------------------------------------

export interface Row {
	figure: string;
	value: number | string;
	unit?: string;
	/** Human text of the target, e.g. "≤ 150". */
	target?: string;
	/** Whether the target is met; undefined when the row has no target. */
	pass?: boolean;
}

function show(value: number | string): string {
	if (typeof value === "string") return value;
	if (!Number.isFinite(value)) return String(value);
	return Number.isInteger(value) ? value.toLocaleString("en-US") : value.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

/** A readable table of figures with targets and pass/miss. */
export function printTable(title: string, rows: readonly Row[], out: (line: string) => void = console.log): void {
	const cells = rows.map((r) => [
		r.figure,
		`${show(r.value)}${r.unit ? ` ${r.unit}` : ""}`,
		r.target ?? "",
		r.pass === undefined ? "" : r.pass ? "pass" : "MISS",
	]);
	const head = ["figure", "value", "target", ""];
	const widths = head.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i].length)));
	const line = (c: string[]) =>
		c
			.map((s, i) => (i === 1 ? s.padStart(widths[i]) : s.padEnd(widths[i])))
			.join("  ")
			.trimEnd();
	out("");
	out(title);
	out(line(head));
	out(widths.map((w) => "-".repeat(w)).join("  "));
	for (const c of cells) out(line(c));
	out("");
}

/** The last line of every bench: all figures as one line of JSON on stdout. */
export function printJsonLine(figures: Record<string, unknown>): void {
	process.stdout.write(`${JSON.stringify(figures)}\n`);
}

/** Progress for humans, on stderr so stdout stays table + JSON. */
export function log(message: string): void {
	process.stderr.write(`[bench] ${message}\n`);
}

/** What a bench's node processes share: namespace and queues named by run, the demo worker doing workMs per message, one message per perform, a perform log. */
export function demoNodeEnv(options: { name: string; actors: number; workMs: number; performLog: string; highWater: number; amqpUrl: string }) {
	const { name } = options;
	return {
		NAMESPACE: name,
		KEYHIVE_ACTORS: String(options.actors),
		KEYHIVE_DEMO_WORK_MS: String(options.workMs),
		KEYHIVE_MAX_BATCH: "1",
		KEYHIVE_PERFORM_LOG: options.performLog,
		KEYHIVE_QUEUE: `${name}.inbox`,
		KEYHIVE_RESULTS_QUEUE: `${name}.processed`,
		KEYHIVE_HIGH_WATER: String(options.highWater),
		AMQP_URL: options.amqpUrl,
	};
}
