/**
 * Where a REPL command writes: whole lines, and progress bars redrawn in place.
 */
import { renderProgress, type ProgressState } from "./format";

/**
 * `print(line)` writes a whole line; `progress(line, final)` rewrites the
 * current line in place (a progress bar) and ends it when final. Without
 * `progress`, only the final state of a bar is printed.
 */
export interface Print {
	(line: string): void;
	progress?: (line: string, final: boolean) => void;
}

/** The REPL's terminal: progress bars rewritten with \r on a TTY, only their last state otherwise. */
export const stdoutPrint: Print = Object.assign((line: string) => void process.stdout.write(line + "\n"), {
	progress(line: string, final: boolean) {
		if (process.stdout.isTTY) process.stdout.write(`\r${line}\x1b[K${final ? "\n" : ""}`);
		else if (final) process.stdout.write(line + "\n");
	},
});

/** A progress bar on one line, redrawn at most every 100 ms. */
export class ProgressLine {
	private lastDraw = 0;
	private open = false;
	private last: string | null = null;

	constructor(private readonly print: Print) {}

	update(state: ProgressState): void {
		const now = Date.now();
		if (now - this.lastDraw < 100) return;
		this.lastDraw = now;
		this.last = renderProgress(state);
		if (this.print.progress) {
			this.print.progress(this.last, false);
			this.open = true;
		}
	}

	finish(state: ProgressState): void {
		this.last = renderProgress(state);
		if (this.print.progress) this.print.progress(this.last, true);
		else this.print(this.last);
		this.open = false;
	}

	/** Ends a bar left half-drawn (an error is about to be printed below it). */
	abandon(): void {
		if (this.open && this.last !== null) this.print.progress?.(this.last, true);
		this.open = false;
	}
}
