/**
 * Pure helpers of the REPL commands: progress bars, rates, plain aligned
 * tables, option parsing and the ring share. No broker, no I/O, so every one
 * of them is unit-tested on its own.
 */
import { Ring } from "../ring";

/** A mistake in what the user typed: shown as one line, never as a stack trace. */
export class UsageError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "UsageError";
	}
}

/** 1234567 → "1,234,567" (fixed grouping, whatever the locale). */
export function formatCount(n: number): string {
	const sign = n < 0 ? "-" : "";
	const digits = String(Math.round(Math.abs(n)));
	return sign + digits.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** Items per second over elapsedMs; 0 when no time has passed. */
export function ratePerSecond(count: number, elapsedMs: number): number {
	return elapsedMs > 0 ? (count * 1000) / elapsedMs : 0;
}

/** "12,345 msg/s" */
export function formatRate(perSecond: number, unit = "msg/s"): string {
	return `${formatCount(perSecond)} ${unit}`;
}

/** 850 → "850 ms", 1234 → "1.2 s", 125000 → "2 min 5 s". */
export function formatDuration(ms: number): string {
	if (ms < 1000) return `${Math.round(ms)} ms`;
	if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
	const minutes = Math.floor(ms / 60_000);
	const seconds = Math.round((ms % 60_000) / 1000);
	return seconds === 0 ? `${minutes} min` : `${minutes} min ${seconds} s`;
}

/** 0.5 → "50.0%" */
export function formatPercent(fraction: number, digits = 1): string {
	return `${(fraction * 100).toFixed(digits)}%`;
}

export interface ProgressState {
	/** Shown before the bar, e.g. "publish". */
	label: string;
	done: number;
	total: number;
	elapsedMs: number;
	/** Cells of the bar itself. */
	width?: number;
}

/**
 * One line of a progress bar:
 * `publish  [##########..........]  1,000/2,000   50.0%  12,345 msg/s`
 * done is clamped to [0, total]; a total of 0 shows as complete.
 */
export function renderProgress(p: ProgressState): string {
	const width = p.width ?? 30;
	const total = Math.max(0, p.total);
	const done = Math.min(Math.max(0, p.done), total);
	const fraction = total === 0 ? 1 : done / total;
	const filled = Math.round(fraction * width);
	const bar = "#".repeat(filled) + ".".repeat(width - filled);
	const counts = `${formatCount(done)}/${formatCount(total)}`;
	const percent = formatPercent(fraction).padStart(6);
	return `${p.label}  [${bar}]  ${counts}  ${percent}  ${formatRate(ratePerSecond(done, p.elapsedMs))}`;
}

export type Align = "left" | "right";
export type Cell = string | number | boolean | null | undefined;

function cellText(cell: Cell): string {
	if (cell === null || cell === undefined) return "-";
	if (typeof cell === "number") return Number.isInteger(cell) ? formatCount(cell) : String(cell);
	return String(cell);
}

/**
 * A plain aligned table: a header, a rule of dashes, one line per row.
 * Numbers are right-aligned unless align says otherwise; null/undefined show "-".
 */
export function formatTable(headers: string[], rows: Cell[][], align: Align[] = []): string[] {
	const texts = rows.map((row) => headers.map((_, i) => cellText(row[i])));
	const widths = headers.map((h, i) => Math.max(h.length, ...texts.map((row) => row[i].length)));
	const alignOf = (i: number): Align => {
		if (align[i]) return align[i];
		return rows.length > 0 && rows.every((row) => typeof row[i] === "number" || row[i] === null || row[i] === undefined) ? "right" : "left";
	};
	const line = (cells: string[]) =>
		cells
			.map((text, i) => (alignOf(i) === "right" ? text.padStart(widths[i]) : text.padEnd(widths[i])))
			.join("  ")
			.trimEnd();
	return [line(headers), widths.map((w) => "-".repeat(w)).join("  "), ...texts.map(line)];
}

/** Two columns, for one record (an actor, an owner): `name   value`. */
export function formatRecord(pairs: [string, Cell][]): string[] {
	const width = Math.max(0, ...pairs.map(([name]) => name.length));
	return pairs.map(([name, value]) => `${name.padEnd(width)}  ${cellText(value)}`.trimEnd());
}

/** Cuts text to max characters, marking the cut with "…"; newlines shown as "\n". */
export function truncate(text: string, max: number): string {
	const flat = text.replace(/\r?\n/g, "\\n");
	return flat.length <= max ? flat : flat.slice(0, Math.max(0, max - 1)) + "…";
}

/** Any payload as one short line: strings as they are, everything else as JSON. */
export function showValue(value: unknown, max = 60): string {
	if (typeof value === "string") return truncate(value, max);
	let text: string;
	try {
		text = JSON.stringify(value) ?? String(value);
	} catch {
		text = String(value);
	}
	return truncate(text, max);
}

export interface IntegerOption {
	/** Allowed range, inclusive. */
	min?: number;
	max?: number;
	/** Used when the option was not given (undefined). */
	fallback?: number;
}

/**
 * A whole-number option as typed (commander gives strings): "--messages must be
 * a whole number from 1, got "abc"" on bad input.
 */
export function parseInteger(value: unknown, flag: string, opts: IntegerOption = {}): number {
	const min = opts.min ?? 1;
	const max = opts.max ?? Number.MAX_SAFE_INTEGER;
	if (value === undefined || value === null || value === "") {
		if (opts.fallback !== undefined) return opts.fallback;
		throw new UsageError(`${flag} is required`);
	}
	const text = String(value).trim().replace(/_/g, "");
	const range = max === Number.MAX_SAFE_INTEGER ? `from ${min}` : `from ${min} to ${max}`;
	if (value === true || !/^-?\d+$/.test(text)) throw new UsageError(`${flag} must be a whole number ${range}, got "${String(value)}"`);
	const n = Number(text);
	if (n < min || n > max) throw new UsageError(`${flag} must be a whole number ${range}, got ${n}`);
	return n;
}

/**
 * Each member's share of the keys key_1 … key_sample on the ring of these
 * members (the same ring every node computes), as a fraction 0..1.
 * Every member appears, with 0 when it owns none of the sample.
 */
export function ringShare(members: readonly string[], points = 160, sample = 10_000): Map<string, number> {
	const ring = Ring.of(members, points);
	const counts = new Map<string, number>(ring.members.map((m) => [m, 0]));
	if (ring.members.length === 0 || sample <= 0) return counts;
	for (let i = 1; i <= sample; i++) {
		const owner = ring.ownerOf(`key_${i}`);
		if (owner !== null) counts.set(owner, (counts.get(owner) ?? 0) + 1);
	}
	return new Map([...counts].map(([m, c]) => [m, c / sample]));
}

/**
 * Sums the `processed` counters of many nodes since a baseline. Counters read
 * before startCounting() are the baseline; a node first seen afterwards joined
 * during the run and counts from 0; a counter that goes down means its node
 * restarted, so what it had counted is kept and it counts from 0 again.
 */
export class ProcessedTally {
	private readonly base = new Map<string, number>();
	private readonly last = new Map<string, number>();
	private carried = 0;
	private counting = false;

	observe(node: string, processed: number): void {
		const last = this.last.get(node);
		if (last === undefined) {
			this.base.set(node, this.counting ? 0 : processed);
		} else if (processed < last) {
			this.carried += last - (this.base.get(node) ?? 0);
			this.base.set(node, 0);
		}
		this.last.set(node, processed);
	}

	/** Everything observed from now on counts. */
	startCounting(): void {
		this.counting = true;
	}

	/** Messages processed since the baseline, over every node seen. */
	delta(): number {
		let sum = this.carried;
		for (const [node, value] of this.last) sum += value - (this.base.get(node) ?? 0);
		return sum;
	}

	nodes(): string[] {
		return [...this.last.keys()];
	}
}
