/**
 * An audit trail of performs, one line each: key, node, start, end (ms, wall
 * clock with sub-ms precision), messages. Tests and the chaos soak read it to
 * prove that no key was ever performed on two nodes at once.
 */
import * as fs from "fs";

export class PerformLog {
	private readonly fd: number;
	private readonly node: string;
	private lines: string[] = [];

	constructor(file: string, node: string) {
		this.fd = fs.openSync(file, "a");
		this.node = node;
	}

	now(): number {
		return performance.timeOrigin + performance.now();
	}

	record(key: string, start: number, end: number, messages: number): void {
		this.lines.push(`${key}\t${this.node}\t${start.toFixed(3)}\t${end.toFixed(3)}\t${messages}\n`);
	}

	flush(): void {
		if (this.lines.length === 0) return;
		fs.writeSync(this.fd, this.lines.join(""));
		this.lines = [];
	}

	close(): void {
		this.flush();
		fs.closeSync(this.fd);
	}
}

export interface PerformRecord {
	key: string;
	node: string;
	start: number;
	end: number;
	messages: number;
}

export function parsePerformLog(text: string): PerformRecord[] {
	return text
		.split("\n")
		.filter((line) => line.length > 0)
		.map((line) => {
			const [key, node, start, end, messages] = line.split("\t");
			return { key, node, start: Number(start), end: Number(end), messages: Number(messages) };
		});
}

/** Pairs of performs of one key on two different nodes whose intervals overlap. */
export function findOverlaps(records: PerformRecord[]): [PerformRecord, PerformRecord][] {
	const byKey = new Map<string, PerformRecord[]>();
	for (const r of records) {
		const list = byKey.get(r.key) ?? [];
		list.push(r);
		byKey.set(r.key, list);
	}
	const overlaps: [PerformRecord, PerformRecord][] = [];
	for (const list of byKey.values()) {
		list.sort((a, b) => a.start - b.start);
		let last: PerformRecord | null = null;
		for (const r of list) {
			if (last && r.node !== last.node && r.start < last.end) overlaps.push([last, r]);
			if (!last || r.end > last.end) last = r;
		}
	}
	return overlaps;
}
