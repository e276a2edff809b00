/**
 * Polling helpers for tests: wait for a condition with a deadline instead
 * of sleeping a fixed time and hoping.
 */

export interface WaitOptions {
	/** Give up after this long (default 5000 ms). */
	timeoutMs?: number;
	/** What was awaited, for the failure message. */
	message: string;
	/** Poll interval; by default 5 ms, doubling up to 50 ms, so quick conditions are seen at once and slow ones (calls across processes) are not polled hard. */
	intervalMs?: number;
	/** Extra state for the failure message, read when the deadline passes. */
	detail?: () => string;
}

/**
 * Resolves with probe()'s first truthy value; rejects with the message when the
 * deadline passes (a probe that throws counts as not yet, its last error is shown).
 */
export async function waitFor<T>(probe: () => T | Promise<T>, options: WaitOptions): Promise<NonNullable<T>> {
	const timeoutMs = options.timeoutMs ?? 5000;
	let interval = options.intervalMs ?? 5;
	const deadline = Date.now() + timeoutMs;
	let last: unknown;
	for (;;) {
		try {
			const value = await probe();
			if (value) return value as NonNullable<T>;
		} catch (err) {
			last = err;
		}
		if (Date.now() > deadline) {
			const details = [options.detail?.(), last ? `last error: ${(last as Error).message}` : undefined].filter(Boolean);
			throw new Error(`timed out after ${timeoutMs} ms waiting for ${options.message}${details.length ? ` (${details.join("; ")})` : ""}`);
		}
		await sleep(interval);
		if (options.intervalMs === undefined) interval = Math.min(interval * 2, 50);
	}
}

/** A promise resolved after ms (at once for ms <= 0, as a deadline already past asks). */
export function sleep(ms: number): Promise<void> {
	return new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
}

/** Lets pending immediates and microtasks run (a few event-loop turns). */
export async function turns(count = 5): Promise<void> {
	for (let i = 0; i < count; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** A promise with its resolve and reject outside: a gate a test opens when it wants. */
export interface Deferred<T = void> {
	promise: Promise<T>;
	resolve(value: T): void;
	reject(error: Error): void;
	readonly settled: boolean;
}

export function deferred<T = void>(): Deferred<T> {
	let resolve!: (value: T) => void;
	let reject!: (error: Error) => void;
	let settled = false;
	const promise = new Promise<T>((res, rej) => {
		resolve = (v) => {
			settled = true;
			res(v);
		};
		reject = (e) => {
			settled = true;
			rej(e);
		};
	});
	return {
		promise,
		resolve,
		reject,
		get settled() {
			return settled;
		},
	};
}

/** Whether a promise has settled yet (after letting queued turns run). */
export async function isSettled(promise: Promise<unknown>): Promise<boolean> {
	let done = false;
	promise.then(
		() => (done = true),
		() => (done = true),
	);
	await turns(3);
	return done;
}
