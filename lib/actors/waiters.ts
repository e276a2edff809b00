/**
 * The promises callers wait on: a message's result, an actor going idle, and
 * plain "wake everyone" lists (the view settled, the leaving actors released).
 */

/** Callers of awaitResult, by message id. */
export class ResultWaiters {
	private readonly byId = new Map<string, { resolve(v: unknown): void; reject(e: Error): void }>();

	wait(id: string): Promise<unknown> {
		return new Promise((resolve, reject) => this.byId.set(id, { resolve, reject }));
	}

	forget(id: string): void {
		this.byId.delete(id);
	}

	resolve(id: string, value: unknown): void {
		const waiter = this.byId.get(id);
		if (!waiter) return;
		this.byId.delete(id);
		waiter.resolve(value);
	}

	reject(id: string, error: Error): void {
		const waiter = this.byId.get(id);
		if (!waiter) return;
		this.byId.delete(id);
		waiter.reject(error);
	}
}

/** Waiters keyed by an object (an actor), woken together. */
export class KeyedWaiters<K> {
	private readonly byKey = new Map<K, (() => void)[]>();

	wait(key: K): Promise<void> {
		return new Promise((resolve) => {
			const list = this.byKey.get(key);
			if (list) list.push(resolve);
			else this.byKey.set(key, [resolve]);
		});
	}

	wake(key: K): void {
		const list = this.byKey.get(key);
		if (!list) return;
		this.byKey.delete(key);
		for (const resolve of list) resolve();
	}
}

/** Waiters woken all at once. */
export class WaiterList {
	private list: (() => void)[] = [];

	wait(): Promise<void> {
		return new Promise((resolve) => this.list.push(resolve));
	}

	get waiting(): boolean {
		return this.list.length > 0;
	}

	wakeAll(): void {
		for (const resolve of this.list.splice(0)) resolve();
	}
}
