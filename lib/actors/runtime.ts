/**
 * The dynamic manager: holds and schedules the actors this node owns.
 *
 * An actor is a six-field object in a Map plus a reference in the timer wheel;
 * an idle actor costs nothing else. Rows are dealt from the store to the actors
 * they belong to, one perform per actor at a time, and finished performs are
 * committed in groups: rows deleted, ids remembered, new state and outbox
 * written in one transaction.
 *
 * Ownership: an actor is in the Map only while this node owns its key. On a
 * new view the actors whose key moved stop starting performs and are released
 * when idle (their rows then ship); keys newly owned start only when the view
 * is settled on every node.
 *
 * This class coordinates; the parts live beside it: Actor (actor.ts),
 * Mailboxes, the ReadyQueue and the TimerWheel, activation after a settle
 * (activation.ts), what a perform's result means (perform-result.ts), result
 * ids, retries (RetryPolicy), the CommitBatcher, InflightPerforms and the
 * waiters.
 */
import type { ActorRecord, Store, StoredMessage } from "../store/store";
import { NotOwnerError } from "../topology/not-owner-error";
import type { TopologyParticipant, TopologyState, View } from "../topology/topology";
import { activateOwned, SettleMemory, type ActivationHost } from "./activation";
import { Actor, BACKOFF, BUSY, LEAVING, RELEASED } from "./actor";
import { CommitBatcher, type Finished } from "./commit-batcher";
import { InflightPerforms } from "./inflight";
import { LagHistogram } from "./lag";
import { Mailboxes } from "./mailboxes";
import { Context } from "./perform-context";
import { PerformLog } from "./perform-log";
import { interpretResult, isEmptyCommit } from "./perform-result";
import { withResultIds } from "./result-id";
import { ReadyQueue } from "./ready-queue";
import { RetryPolicy } from "./retry-policy";
import type { ActorBehaviour, ActorMessage, PerformResult, TerminateReason } from "./types";
import { KeyedWaiters, ResultWaiters, WaiterList } from "./waiters";
import { TimerWheel } from "./wheel";

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

export interface RuntimeOptions {
	store: Store;
	self: string;
	behaviour: ActorBehaviour;
	/** Periodic perform interval in ms of actors that name none. */
	defaultInterval?: number;
	/** These four come from the config (lib/config.ts holds their defaults). */
	maxAttempts: number;
	retryBaseMs: number;
	retryMaxMs?: number;
	/** A perform that has not settled after this long is failed. */
	performTimeoutMs: number;
	/** Messages per perform at most. */
	maxBatch: number;
	tickMs?: number;
	payloadFormat?: "text" | "json";
	performLog?: string;
	/** A committed actor record for a key this node does not own (a replace with a new id). */
	onForeignRecord?(id: string): void;
	/** An actor was released: its rows may ship now. */
	onRelease?(): void;
	logger?: { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
}

/** A perform whose commit found the disk full is tried again after this long. */
const DISK_FULL_RETRY_MS = 1000;

const NO_MESSAGES: ActorMessage[] = Object.freeze([]) as unknown as ActorMessage[];

export class ActorRuntime implements TopologyParticipant, ActivationHost {
	readonly store: Store;
	readonly behaviour: ActorBehaviour;
	readonly defaultInterval: number;
	private readonly self: string;
	private readonly options: RuntimeOptions;
	private readonly retry: RetryPolicy;
	private readonly performTimeoutMs: number;
	private readonly maxBatch: number;
	private readonly json: boolean;
	private readonly startedAt = Date.now();

	private readonly actors = new Map<string, Actor>();
	private readonly mailboxes = new Mailboxes<Actor>();
	private readonly wheel: TimerWheel<Actor>;
	private readonly ready = new ReadyQueue(
		() => this.active,
		(actor, now) => this.run(actor, now),
	);
	private readonly inflight = new InflightPerforms<Actor>();
	private readonly commits: CommitBatcher;
	private readonly results = new ResultWaiters();
	private readonly idleWaiters = new KeyedWaiters<Actor>();
	private readonly releaseWaiters = new WaiterList();
	private readonly readyWaiters = new WaiterList();
	private view: View | null = null;
	private state: TopologyState = "down";
	private settled = false;
	/** A row of an owned key without an actor arrived before the settle and was left in the store. */
	private skippedUnsettled = false;
	private readonly settles = new SettleMemory();
	private timers: NodeJS.Timeout[] = [];
	private busyCount = 0;
	private leavingCount = 0;
	private readonly lag = new LagHistogram();
	private readonly performLog: PerformLog | null;

	performs = 0;
	processed = 0;
	failures = 0;
	deadLettered = 0;
	timeouts = 0;

	constructor(options: RuntimeOptions) {
		this.options = options;
		this.store = options.store;
		this.self = options.self;
		this.behaviour = options.behaviour;
		this.defaultInterval = options.defaultInterval ?? 1000;
		this.retry = new RetryPolicy(options.maxAttempts, options.retryBaseMs, options.retryMaxMs ?? 30_000);
		this.performTimeoutMs = options.performTimeoutMs;
		this.maxBatch = options.maxBatch;
		this.json = options.payloadFormat === "json";
		this.wheel = new TimerWheel<Actor>(options.tickMs ?? 10);
		this.performLog = options.performLog ? new PerformLog(options.performLog, options.self) : null;
		this.commits = new CommitBatcher({
			store: this.store,
			performLog: this.performLog,
			logger: options.logger,
			committed: (f) => this.finish(f),
			rejected: (f, error) => {
				// A failure whose own commit failed leaves its rows as they were; a success becomes a failure.
				if (f.failed) this.finish({ ...f, commit: {}, removed: null });
				else this.fail(f.actor, f.rows, error, f.started);
			},
			noRoom: (f) => this.retryWhenRoom(f),
		});
		this.store.onStored((rows) => this.deal(rows));
	}

	/** Starts the wheel; actors arrive with the first settled view. */
	start(): void {
		if (this.timers.length > 0) return;
		this.timers = [setInterval(() => this.tick(), this.wheel.tickMs), setInterval(() => this.markOverduePerforms(), Math.min(1000, this.performTimeoutMs))];
	}

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
		const activation = this.settles.settle(view, this.self, (id) => this.owns(id))
			? activateOwned(this, view).then((complete) => {
					if (complete) this.rescan();
				})
			: Promise.resolve(this.rescanIfSkipped());
		void activation.then(() => this.readyWaiters.wakeAll());
	}

	/** Whether this node still holds the actor of key (its rows must not ship yet). */
	holds(key: string): boolean {
		return this.actors.has(key);
	}

	owns(key: string): boolean {
		return this.view !== null && this.view.ring.ownerOf(key) === this.self;
	}

	isCurrent(view: View): boolean {
		return this.view === view && this.state !== "stopped";
	}

	private get active(): boolean {
		return this.state === "rehashing" || this.state === "ready";
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

	/** Drops an idle actor and its mailbox from memory; its state and rows are already in the store. */
	private release(actor: Actor, reason: TerminateReason): void {
		this.actors.delete(actor.id);
		actor.flags |= RELEASED;
		this.wheel.cancel(actor);
		if (actor.flags & LEAVING) this.leavingCount--;
		if (reason === "moved") this.settles.moved(actor.id);
		this.mailboxes.drop(actor);
		this.behaviour.terminate?.(actor.id, reason, actor.payload);
		this.idleWaiters.wake(actor);
		this.options.onRelease?.();
		if (this.leavingCount === 0) this.releaseWaiters.wakeAll();
	}

	spawn(id: string, payload: unknown, interval: number): Actor {
		const init = this.behaviour.init?.(id, payload);
		const actor = new Actor(id, init === undefined ? payload : init, interval);
		this.actors.set(id, actor);
		// The first periodic perform falls anywhere in one interval, so a million actors spawned together do not all fire in one tick.
		if (interval > 0) this.wheel.schedule(actor, Math.random() * interval, Date.now());
		return actor;
	}

	/** Rows of owned keys without an actor waited for the settle: deal them now. */
	private rescanIfSkipped(): void {
		if (this.skippedUnsettled) this.rescan();
	}

	/** Deals every pending row not dealt yet (after a settle, rows for new keys wait in the store). */
	private rescan(): void {
		this.skippedUnsettled = false;
		let after = 0;
		for (;;) {
			const rows = this.store.scan(after, 5000);
			if (rows.length === 0) break;
			this.deal(rows.filter((row) => !this.mailboxes.isDealt(row.seq)));
			after = rows[rows.length - 1].seq;
		}
	}

	// ---- dealing rows to actors -------------------------------------------

	private deal(rows: StoredMessage[]): void {
		for (const row of rows) {
			let actor = this.actors.get(row.key);
			if (!actor) {
				if (!this.active || !this.owns(row.key)) continue;
				if (!this.settled) {
					this.skippedUnsettled = true;
					continue;
				}
				actor = this.activateOnDemand(row.key);
			}
			if (actor.flags & LEAVING) continue;
			this.mailboxes.add(actor, row);
			this.ready.push(actor);
		}
	}

	private activateOnDemand(id: string): Actor {
		const record = this.store.actor(id);
		if (record && !record.deleted) return this.spawn(id, record.payload, record.timeout);
		const initial = this.behaviour.spawn?.(id) ?? {};
		// spawn()'s timeout is Tarearbol's name for the periodic interval.
		return this.spawn(id, initial.payload ?? null, initial.timeout ?? this.defaultInterval);
	}

	// ---- scheduling --------------------------------------------------------

	private tick(): void {
		const now = Date.now();
		if (!this.active) return;
		this.wheel.advance(now, (actor, late) => {
			if (actor.flags & (BUSY | LEAVING | RELEASED)) return;
			if (actor.flags & BACKOFF) {
				actor.flags &= ~BACKOFF;
				this.ready.push(actor);
				return;
			}
			this.lag.record(late);
			this.run(actor, now);
		});
	}

	// ---- performing --------------------------------------------------------

	private run(actor: Actor, now: number): void {
		const rows = this.mailboxes.take(actor, this.maxBatch);
		actor.flags |= BUSY;
		this.busyCount++;
		this.wheel.cancel(actor);
		this.performs++;
		actor.last = Math.floor((now - this.startedAt) / 1000);
		const attempt = rows.length === 0 ? 1 : rows[0].attempts + 1;
		const ctx = new Context(this.self, attempt, now, actor.id);
		const started = this.performLog ? this.performLog.now() : 0;
		let result: PerformResult | Promise<PerformResult>;
		try {
			result = this.behaviour.perform(actor.id, actor.payload, rows.length === 0 ? NO_MESSAGES : rows.map((r) => this.toMessage(r)), ctx);
		} catch (err) {
			this.fail(actor, rows, toError(err), started);
			return;
		}
		if (result !== null && typeof result === "object" && typeof (result as Promise<unknown>).then === "function") {
			const entry = this.inflight.track(actor, now, rows);
			(result as Promise<PerformResult>).then(
				(value) => {
					this.inflight.settle(actor);
					if (entry.timedOut) this.fail(actor, rows, this.timeoutError(), started);
					else this.complete(actor, rows, value, ctx, started);
				},
				(err) => {
					this.inflight.settle(actor);
					this.fail(actor, rows, entry.timedOut ? this.timeoutError() : toError(err), started);
				},
			);
			return;
		}
		this.complete(actor, rows, result as PerformResult, ctx, started);
	}

	private toMessage(row: StoredMessage): ActorMessage {
		let payload: unknown = row.payload;
		if (this.json) {
			try {
				payload = JSON.parse(row.payload);
			} catch {
				payload = row.payload;
			}
		}
		return { id: row.id, key: row.key, payload, headers: row.headers, receivedAt: row.receivedAt, attempts: row.attempts };
	}

	private complete(actor: Actor, rows: StoredMessage[], value: PerformResult, ctx: Context, started: number): void {
		const outbox = ctx.outbox && withResultIds(ctx.outbox, rows, actor.id, ctx.startedAt);
		const { commit, result, removed, update } = interpretResult(actor, value, rows, outbox);
		const finished: Finished = { actor, rows, result, commit, removed, failed: null, started, update };
		if (isEmptyCommit(commit)) this.finish(finished);
		else this.commits.add(finished);
	}

	private fail(actor: Actor, rows: StoredMessage[], error: Error, started: number): void {
		this.failures++;
		if (rows.length === 0) {
			this.options.logger?.warn(`actor ${actor.id}: periodic perform failed: ${error.message}`);
			this.finish({ actor, rows, result: undefined, commit: {}, removed: null, failed: error, started });
			return;
		}
		this.commits.add({ actor, rows, result: undefined, commit: this.retry.failureCommit(rows, error), removed: null, failed: error, started });
	}

	/** After a perform is over (and committed, when it had something to commit). */
	private finish(f: Finished): void {
		const { actor, rows } = f;
		actor.flags &= ~BUSY;
		this.busyCount--;
		this.mailboxes.done(rows);
		if (f.failed) this.retryOrDeadLetter(actor, rows, f.failed, f.commit.dead);
		else {
			if (f.update) {
				actor.payload = f.update.payload;
				actor.interval = f.update.interval;
			}
			this.processed += rows.length;
			for (const row of rows) this.results.resolve(row.id, f.result);
		}
		if (f.removed) {
			this.release(actor, f.removed);
			if (f.removed === "replaced") this.adoptReplacement(f.commit.actors![1]);
			// Rows that waited behind the last perform activate the key again.
			this.deal(this.store.messagesOf(actor.id).filter((r) => !this.mailboxes.isDealt(r.seq)));
			return;
		}
		if (actor.flags & LEAVING) {
			this.release(actor, "moved");
			return;
		}
		this.idleWaiters.wake(actor);
		if (actor.flags & BACKOFF) return;
		if (this.mailboxes.has(actor)) this.ready.push(actor);
		else if (actor.interval > 0) this.wheel.schedule(actor, actor.interval, Date.now());
	}

	/** A failed perform's dead rows reject their callers; the others go back to the mailbox after a backoff. */
	private retryOrDeadLetter(actor: Actor, rows: StoredMessage[], error: Error, dead: { seq: number }[] | undefined): void {
		const deadSeqs = new Set((dead ?? []).map((d) => d.seq));
		this.deadLettered += deadSeqs.size;
		const back: StoredMessage[] = [];
		for (const row of rows) {
			if (deadSeqs.has(row.seq)) this.results.reject(row.id, error);
			else {
				row.attempts++;
				back.push(row);
			}
		}
		if (back.length === 0) return;
		this.mailboxes.putBack(actor, back);
		actor.flags |= BACKOFF;
		this.wheel.schedule(actor, this.retry.backoffMs(back[0].attempts), Date.now());
	}

	/**
	 * A perform whose commit found the disk full did not happen: its rows go back to the head of the
	 * mailbox as they were (no attempt counted, nothing dead-lettered, state unchanged) and it is tried again
	 * after DISK_FULL_RETRY_MS. Counting it would dead-letter the rows by a commit that frees room.
	 */
	private retryWhenRoom(f: Finished): void {
		const { actor, rows } = f;
		actor.flags &= ~BUSY;
		this.busyCount--;
		if (actor.flags & LEAVING) {
			this.mailboxes.done(rows);
			this.release(actor, "moved");
			return;
		}
		this.idleWaiters.wake(actor);
		if (rows.length > 0) this.mailboxes.putBack(actor, rows);
		actor.flags |= BACKOFF;
		this.wheel.schedule(actor, DISK_FULL_RETRY_MS, Date.now());
	}

	/** The new actor of a replace-with-id: started here if owned, else its record ships. */
	private adoptReplacement(record: ActorRecord): void {
		const running = this.actors.get(record.id);
		if (running) running.payload = record.payload;
		if (!this.owns(record.id)) {
			this.options.onForeignRecord?.(record.id);
		} else if (!running && this.settled) {
			this.spawn(record.id, record.payload, record.timeout);
			this.rescan();
		}
	}

	/**
	 * A perform past the perform timeout is failed when its promise settles, not
	 * before: until then its actor stays busy, so the key is neither performed
	 * again nor released and shipped while the first perform still runs.
	 */
	private markOverduePerforms(): void {
		for (const [actor] of this.inflight.markOverdue(Date.now(), this.performTimeoutMs)) {
			this.timeouts++;
			this.behaviour.handleTimeout?.(actor.id, actor.payload);
			if (actor.flags & LEAVING) this.logHeldByTimeout(actor);
		}
	}

	private logHeldByTimeout(actor: Actor): void {
		this.options.logger?.warn(`handoff waits for the perform of ${actor.id}: past the perform timeout (${this.performTimeoutMs} ms) and still running`);
	}

	private timeoutError(): Error {
		return new Error(`perform timed out after ${this.performTimeoutMs} ms`);
	}

	private async idle(actor: Actor): Promise<void> {
		while (actor.flags & BUSY) await this.idleWaiters.wait(actor);
	}

	// ---- the API behind the actions ----------------------------------------

	/** Resolves when this node is settled on its view and may create actors. */
	whenReady(): Promise<void> {
		if (this.settled && this.active) return Promise.resolve();
		return this.readyWaiters.wait();
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
		this.store.commit({ actors: [{ id, payload, timeout: interval, deleted: false }] });
		if (actor) {
			actor.payload = payload;
			actor.interval = interval;
			this.wheel.cancel(actor);
			if (interval > 0) this.wheel.schedule(actor, interval, Date.now());
		} else {
			actor = this.spawn(id, payload, interval);
			this.rescan();
		}
		return this.info(actor);
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
		this.store.commit({
			dead: pending.map((m) => ({ seq: m.seq, reason: "actor deleted" })),
			actors: [{ id, payload: null, timeout: 0, deleted: true }],
		});
		this.deadLettered += pending.length;
		for (const m of pending) this.results.reject(m.id, new Error("actor deleted"));
		if (current) this.release(current, "deleted");
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

	/** Stops starting performs, waits for those in flight, and commits them. */
	async stop(): Promise<void> {
		for (const timer of this.timers) clearInterval(timer);
		this.timers = [];
		this.state = "stopped";
		const deadline = Date.now() + this.performTimeoutMs;
		while ((this.busyCount > 0 || this.commits.pending > 0) && Date.now() < deadline) {
			await new Promise((resolve) => setTimeout(resolve, 5));
		}
		for (const actor of this.actors.values()) {
			actor.flags |= RELEASED;
			this.behaviour.terminate?.(actor.id, "stopped", actor.payload);
		}
		this.actors.clear();
		this.mailboxes.clear();
		this.performLog?.close();
	}
}

function toError(err: unknown): Error {
	return err instanceof Error ? err : new Error(String(err));
}
