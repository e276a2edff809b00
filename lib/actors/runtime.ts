/**
 * The actor runtime of a node: the actor engine (engine.ts) taking part in the
 * topology, and the API behind the worker's actions.
 *
 * Ownership: an actor is in the engine only while this node owns its key. On
 * a new view the actors whose key moved stop starting performs and are
 * released when idle (their rows then ship); keys newly owned start only when
 * the view is settled on every node (activation.ts).
 *
 * put and del wait for the actor to be idle, then check ownership again, since
 * the key may have moved meanwhile.
 */
import { NotOwnerError } from "../topology/not-owner-error";
import type { TopologyParticipant, TopologyState, View } from "../topology/topology";
import { type ActivationHost, activateOwned } from "./activation";
import { type Actor, BUSY, LEAVING } from "./actor";
import { ActorEngine } from "./engine";
import { WaiterList } from "./waiters";

export type { RuntimeOptions } from "./engine";

export interface ActorInfo {
	id: string;
	payload: unknown;
	/** Periodic perform interval in ms (Tarearbol's name). */
	timeout: number;
	node: string;
	busy: boolean;
	pending: number;
	lastPerformAgoMs: number | null;
}

export interface RuntimeStats {
	actors: number;
	busy: number;
	pending: number;
	performs: number;
	processed: number;
	failures: number;
	dead: number;
	timeouts: number;
	lagP50: number;
	lagP99: number;
}

export class ActorRuntime extends ActorEngine implements TopologyParticipant, ActivationHost {
	private readonly readyWaiters = new WaiterList();
	/** Actors deleted since the walk of the specs began (the walk read the tombstones at its start). */
	private readonly deletedSinceWalk = new Set<string>();

	// ---- topology participant -------------------------------------------

	onStateChange(_from: TopologyState, to: TopologyState): void {
		this.state = to;
		this.behaviour.handleStateChange?.(to);
		if (this.active) this.ready.schedule();
	}

	onView(view: View): void {
		this.view = view;
		this.settled = false;
		for (const actor of this.actors.values()) {
			if (view.ring.ownerOf(actor.id) !== this.self) this.leave(actor);
		}
	}

	handoff(view: View): Promise<void> {
		if (this.view !== view || this.leavingCount === 0) return Promise.resolve();
		return this.releaseWaiters.wait();
	}

	onSettled(view: View): void {
		if (this.view !== view) return;
		this.settled = true;
		if (!this.settles.settle(view, this.self, (id) => this.owns(id))) {
			this.rescanIfSkipped();
			this.readyWaiters.wakeAll();
			return;
		}
		// Keys with stored state (a takeover's, a handoff's) perform now, not after a walk of every
		// spec; a key without one waits for its spec, and the rescan after the walk deals its rows.
		this.walking = view;
		this.deletedSinceWalk.clear();
		this.rescan();
		void activateOwned(this, view)
			.finally(() => {
				if (this.walking === view) this.walking = null;
			})
			.then((complete) => {
				if (complete) this.rescan();
				else {
					// The next settle walks again: this one did not finish.
					this.settles.interrupted();
					// A newer view stopped this walk and needed none of its own: what waited for the walk goes now.
					if (this.walking === null) this.rescanIfSkipped();
				}
				this.readyWaiters.wakeAll();
			});
	}

	deletedDuringWalk(id: string): boolean {
		return this.deletedSinceWalk.has(id);
	}

	/** Whether this node still holds the actor of key, or an API call is committing one (its rows must not ship yet). */
	holds(key: string): boolean {
		return this.actors.has(key) || this.reserved.has(key);
	}

	isCurrent(view: View): boolean {
		return this.view === view && this.state !== "stopped";
	}

	/** Sticky: a leaving actor is released when idle even if a newer view gives its key back (it restarts from the store). */
	private leave(actor: Actor): void {
		if (!(actor.flags & LEAVING)) {
			actor.flags |= LEAVING;
			this.leavingCount++;
			if (this.inflight.isTimedOut(actor)) this.logHeldByTimeout(actor);
		}
		if (!(actor.flags & BUSY)) this.release(actor, "moved");
	}

	/** Rows of owned keys without an actor waited for the settle: deal them now. */
	private rescanIfSkipped(): void {
		if (this.skipped.size > 0) this.rescan();
	}

	// ---- the API behind the actions ----------------------------------------

	/** Resolves when this node is settled on its view and may create actors (a wake-up from an older view's walk waits on). */
	async whenReady(): Promise<void> {
		while (!(this.settled && this.active)) await this.readyWaiters.wait();
	}

	/** Resolves with the result of the perform that processes message id. */
	awaitResult(id: string): Promise<unknown> {
		return this.results.wait(id);
	}

	forgetWaiter(id: string): void {
		this.results.forget(id);
	}

	/** Creates the actor or replaces its payload and periodic interval (`timeout`, Tarearbol's name). */
	async put(id: string, payload: unknown, timeout?: number): Promise<ActorInfo> {
		await this.whenReady();
		this.assertOwner(id);
		let actor = this.actors.get(id);
		if (actor) {
			await this.idle(actor);
			// The key may have moved while the actor was busy: check again in the turn of the commit.
			this.assertOwner(id);
		}
		actor = this.actors.get(id);
		const interval = timeout ?? actor?.interval ?? this.defaultInterval;
		const commit = () => this.durable.commit({ actors: [{ id, payload, timeout: interval, deleted: false }] });
		if (actor) {
			await this.holding(actor, commit);
			actor.payload = payload;
			actor.interval = interval;
			this.wheel.cancel(actor);
			if (interval > 0) this.wheel.schedule(actor, interval, Date.now());
			return this.info(actor);
		}
		await this.reserving(id, commit);
		// The key may have moved during the commit: the record ships with it, and no actor starts here.
		this.assertOwner(id);
		return this.info(this.spawn(id, payload, interval));
	}

	/** Removes the actor; its pending messages are dead-lettered with reason "actor deleted". */
	async del(id: string): Promise<boolean> {
		await this.whenReady();
		this.assertOwner(id);
		const actor = this.actors.get(id);
		if (actor) {
			await this.idle(actor);
			// A tombstone for a key that moved meanwhile would ship and overwrite the new owner's record.
			this.assertOwner(id);
		}
		const current = this.actors.get(id);
		const pending = this.store.messagesOf(id);
		const commit = () =>
			this.durable.commit({
				dead: pending.map((m) => ({ id: m.id, reason: "actor deleted" })),
				actors: [{ id, payload: null, timeout: 0, deleted: true }],
			});
		if (current) await this.holding(current, commit);
		else await this.reserving(id, commit);
		if (this.walking) this.deletedSinceWalk.add(id);
		this.deadLettered += pending.length;
		for (const m of pending) this.results.reject(m.id, new Error("actor deleted"));
		if (current) this.release(current, "deleted");
		// Rows that came after the deleted ones start the key again, as a row for a deleted key does.
		else if (this.skipped.delete(id)) this.deal(this.store.messagesOf(id));
		return current !== undefined;
	}

	get(id: string): ActorInfo | null {
		const actor = this.actors.get(id);
		return actor ? this.info(actor) : null;
	}

	private info(actor: Actor): ActorInfo {
		return {
			id: actor.id,
			payload: actor.payload,
			timeout: actor.interval,
			node: this.self,
			busy: (actor.flags & BUSY) !== 0,
			pending: this.store.messagesOf(actor.id).length,
			lastPerformAgoMs: actor.last < 0 ? null : Date.now() - (this.startedAt + actor.last * 1000),
		};
	}

	/**
	 * Commits for a key without an actor while no actor of it may start: neither the walk nor
	 * a row arriving spawns one (its rows wait in the store), so the commit's outcome decides.
	 */
	private async reserving<T>(id: string, work: () => Promise<T>): Promise<T> {
		this.reserved.add(id);
		try {
			return await work();
		} finally {
			this.reserved.delete(id);
		}
	}

	private assertOwner(id: string): void {
		if (!this.owns(id)) throw new NotOwnerError(this.self, [id]);
	}

	stats(): RuntimeStats {
		const lag = this.lag.snapshot();
		return {
			actors: this.actors.size,
			busy: this.busyCount,
			pending: this.store.pendingCount,
			performs: this.performs,
			processed: this.processed,
			failures: this.failures,
			dead: this.deadLettered,
			timeouts: this.timeouts,
			lagP50: lag.p50,
			lagP99: lag.p99,
		};
	}

	/** Lag histogram since the last reset (for benchmarks and metrics). */
	takeLag(): { p50: number; p99: number; count: number } {
		return this.lag.take();
	}
}
