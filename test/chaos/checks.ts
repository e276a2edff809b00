/**
 * The soak's verdict: what the results queue and the perform log say about
 * the run, as PASS/FAIL rows.
 *
 * Beyond verify() (lost ids, ids with two counts, order and counts per key):
 * - an id whose result lines come from two nodes was performed twice even if
 *   both performs happened to compute the same count (a republish from the
 *   outbox always comes from the node that performed it);
 * - the perform log must not record more message performs than ids were
 *   published (it may record fewer: a SIGKILL can land between a commit and
 *   its log write; results still in an outbox are performed but have no line yet);
 * - no key was performed on two nodes at overlapping times (findOverlaps).
 */
import { findOverlaps, type PerformRecord } from "../../lib/actors/perform-log";
import { isClean, trace, verify, type PublishedMessage, type ResultLine, type Verdict } from "../support/verify";

export interface CheckRow {
	name: string;
	/** SKIP: not checkable because another check failed first (the run fails anyway). */
	status: "PASS" | "FAIL" | "SKIP";
	detail: string;
}

const pass = (ok: boolean): CheckRow["status"] => (ok ? "PASS" : "FAIL");

export interface Evaluation {
	verdict: Verdict;
	/** Ids with result lines from two or more nodes. */
	multiNode: string[];
	overlaps: [PerformRecord, PerformRecord][];
	performedIds: number;
	loggedMessages: number;
	rows: CheckRow[];
}

export interface EvaluationInput {
	published: PublishedMessage[];
	results: ResultLine[];
	performs: PerformRecord[];
}

function few(list: string[], max = 5): string {
	return list.length === 0 ? "" : ` (${list.slice(0, max).join(", ")}${list.length > max ? ", …" : ""})`;
}

export function evaluate(input: EvaluationInput): Evaluation {
	const verdict = verify(input.published, input.results);
	const nodesById = new Map<string, Set<string>>();
	for (const r of input.results) {
		const set = nodesById.get(r.id) ?? new Set<string>();
		set.add(r.node);
		nodesById.set(r.id, set);
	}
	const multiNode = [...nodesById].filter(([, nodes]) => nodes.size > 1).map(([id]) => id);
	const twice = [...new Set([...verdict.doubled, ...multiNode])];
	const overlaps = findOverlaps(input.performs);
	const loggedMessages = input.performs.reduce((sum, r) => sum + r.messages, 0);
	const performedIds = nodesById.size;
	const keys = new Set(input.published.map((m) => m.key));
	const rows: CheckRow[] = [
		{
			name: "no id lost",
			status: pass(verdict.missing.length === 0),
			detail: `${verdict.missing.length} of ${verdict.published} missing${few(verdict.missing)}`,
		},
		{
			name: "no id performed twice",
			status: pass(twice.length === 0),
			detail: `${twice.length} (${verdict.doubled.length} with two counts, ${multiNode.length} from two nodes)${few(twice)}`,
		},
		{
			name: "order per key",
			status: pass(verdict.outOfOrder.length === 0),
			detail: `${verdict.outOfOrder.length} of ${keys.size} keys out of order${few(verdict.outOfOrder)}`,
		},
		// verify() checks counts only while nothing is missing (a lost id shifts every later count).
		verdict.missing.length > 0
			? { name: "counts per key", status: "SKIP", detail: "not checked: ids are missing" }
			: {
					name: "counts per key",
					status: pass(verdict.badCounts.length === 0),
					detail: `${verdict.badCounts.length} keys whose counts are not 1..n${few(verdict.badCounts)}`,
				},
		{ name: "no unexpected ids", status: pass(verdict.unexpected.length === 0), detail: `${verdict.unexpected.length}${few(verdict.unexpected)}` },
		{
			name: "no key on two nodes at once",
			status: pass(overlaps.length === 0),
			detail: `${overlaps.length} overlapping pairs in ${input.performs.length} performs${few(
				overlaps.map(([a, b]) => `${a.key} ${a.node}/${b.node}`),
				3,
			)}`,
		},
		{
			name: "perform log ≤ one perform per id",
			status: pass(loggedMessages <= verdict.published),
			detail: `${loggedMessages} message performs logged for ${verdict.published} ids published (${performedIds} with a result)`,
		},
	];
	if (!isClean(verdict) && rows.every((r) => r.status !== "FAIL"))
		rows.push({ name: "verify() clean", status: pass(false), detail: "verify() reports a violation the rows above do not show" });
	return { verdict, multiNode, overlaps, performedIds, loggedMessages, rows };
}

/** Per-key traces (n@node in publish order) of the keys that failed, for the post-mortem. */
export function traces(input: EvaluationInput, evaluation: Evaluation, max = 5): string[] {
	const keys = [...evaluation.verdict.outOfOrder, ...evaluation.verdict.badCounts];
	const byId = new Map(input.published.map((m) => [m.id, m.key]));
	for (const id of [...evaluation.verdict.doubled, ...evaluation.multiNode, ...evaluation.verdict.missing]) {
		const key = byId.get(id);
		if (key) keys.push(key);
	}
	return [...new Set(keys)].slice(0, max).map((k) => `${k}: ${trace(input.published, input.results, k)}`);
}

/** A fixed-width table. */
export function table(header: string[], rows: string[][]): string {
	const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
	const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
	return [line(header), line(widths.map((w) => "-".repeat(w))), ...rows.map(line)].join("\n");
}
