/**
 * What "nothing lost, nothing processed twice, in order per key" means, checked
 * from what the cluster published on its results queue.
 *
 * The demo worker publishes { id, key, node, n } per message, n being the key's
 * running count. So for each key, the messages in publish order must carry
 * n = 1, 2, 3, …: a lost message leaves a gap, a second perform raises a count,
 * a reordering breaks the sequence. A result line published again after a crash
 * repeats the same (id, n) and is only counted as a republish.
 */
export interface PublishedMessage {
	id: string;
	key: string;
}

export interface ResultLine {
	id: string;
	key: string;
	node: string;
	n: number;
}

export interface Verdict {
	published: number;
	results: number;
	republished: number;
	missing: string[];
	/** Ids performed more than once (two different counts). */
	doubled: string[];
	/** Keys whose counts do not follow publish order. */
	outOfOrder: string[];
	/** Keys whose counts are not exactly 1..count (lost or doubled inside the actor state). */
	badCounts: string[];
	unexpected: string[];
}

/** Every key is checked, a killed node's keys too: their state and order are taken over from its journal. */
export function verify(published: PublishedMessage[], results: ResultLine[]): Verdict {
	const countsById = new Map<string, Set<number>>();
	let republished = 0;
	for (const r of results) {
		const set = countsById.get(r.id) ?? new Set<number>();
		if (set.has(r.n)) republished++;
		set.add(r.n);
		countsById.set(r.id, set);
	}
	const publishedIds = new Set(published.map((m) => m.id));
	const verdict: Verdict = {
		published: published.length,
		results: results.length,
		republished,
		missing: [],
		doubled: [],
		outOfOrder: [],
		badCounts: [],
		unexpected: [...countsById.keys()].filter((id) => !publishedIds.has(id)),
	};
	const byKey = new Map<string, PublishedMessage[]>();
	for (const m of published) {
		const list = byKey.get(m.key) ?? [];
		list.push(m);
		byKey.set(m.key, list);
	}
	for (const [key, messages] of byKey) {
		const counts: number[] = [];
		for (const m of messages) {
			const set = countsById.get(m.id);
			if (!set) {
				verdict.missing.push(m.id);
				continue;
			}
			if (set.size > 1) verdict.doubled.push(m.id);
			counts.push(Math.min(...set));
		}
		const sorted = [...counts].sort((a, b) => a - b);
		if (sorted.some((n, i) => n !== i + 1) && verdict.missing.length === 0) verdict.badCounts.push(key);
		if (counts.some((n, i) => i > 0 && n <= counts[i - 1])) verdict.outOfOrder.push(key);
	}
	return verdict;
}

export function isClean(v: Verdict): boolean {
	return v.missing.length === 0 && v.doubled.length === 0 && v.outOfOrder.length === 0 && v.badCounts.length === 0 && v.unexpected.length === 0;
}

export function summary(v: Verdict): string {
	const few = (list: string[]) => (list.length === 0 ? "0" : `${list.length} (${list.slice(0, 5).join(", ")}${list.length > 5 ? ", …" : ""})`);
	return [
		`published ${v.published}, result lines ${v.results} (${v.republished} republished)`,
		`missing ${few(v.missing)}`,
		`performed twice ${few(v.doubled)}`,
		`keys out of order ${few(v.outOfOrder)}`,
		`keys with wrong counts ${few(v.badCounts)}`,
		`unexpected ids ${few(v.unexpected)}`,
	].join("\n");
}

/** The (n, node) sequence of one key's results in publish order, for failure messages. */
export function trace(published: PublishedMessage[], results: ResultLine[], key: string): string {
	const byId = new Map(results.map((r) => [r.id, r]));
	return published
		.filter((m) => m.key === key)
		.map((m) => {
			const r = byId.get(m.id);
			return r ? `${r.n}@${r.node}` : "?";
		})
		.join(" ");
}
