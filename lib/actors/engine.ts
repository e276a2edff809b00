/**
 * The actor engine: holds and performs the actors this node owns.
 *
 * An actor is a six-field object in a Map plus a reference in the timer wheel;
 * an idle actor costs nothing else. Rows are dealt from the store to the actors
 * they belong to, one perform per actor at a time, and finished performs are
 * committed in groups: rows deleted, ids remembered, new state and outbox
 * written in one transaction.
 *
 * ActorRuntime (runtime.ts) adds what goes on around it: the topology's view
 * and the API behind the actions. The parts live beside it: Actor (actor.ts),
 * Mailboxes, the ReadyQueue and the TimerWheel, what a perform's result means
 * (perform-result.ts), result ids, retries (RetryPolicy), the CommitBatcher,
 * InflightPerforms and the waiters.
 */
import type { DurableStore } from "../durable/durable-store";
import type { ActorRecord, Store, StoredMessage } from "../store/store";
import type { TopologyState, View } from "../topology/topology";
import { SettleMemory } from "./activation";
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

export interface RuntimeOptions {
	/** The store the actors read, and its journal every commit goes through. */
	durable: DurableStore;
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

/** Holds and performs actors; ActorRuntime is the one kind there is. */
export abstract class ActorEngine {
	readonly store: Store;
	protected readonly durable: DurableStore;
	readonly behaviour: ActorBehaviour;
	readonly defaultInterval: number;
	protected readonly self: string;
	private readonly options: RuntimeOptions;
	private readonly retry: RetryPolicy;
	private readonly performTimeoutMs: number;
	private readonly maxBatch: number;
	private readonly json: boolean;
	protected readonly startedAt = Date.now();

	protected readonly actors = new Map<string, Actor>();
	private readonly mailboxes = new Mailboxes<Actor>();
	protected readonly wheel: TimerWheel<Actor>;
	protected readonly ready = new ReadyQueue(
		() => this.active,
		(actor, now) => this.run(actor, now),
	);
	protected readonly inflight = new InflightPerforms<Actor>();
	private readonly commits: CommitBatcher;
	protected readonly results = new ResultWaiters();
	private readonly idleWaiters = new KeyedWaiters<Actor>();
	protected readonly releaseWaiters = new WaiterList();
	protected view: View | null = null;
	protected state: TopologyState = "down";
	protected settled = false;
	/** Owned keys without an actor whose rows were left in the store (before the settle, or during the walk): dealt when the actor is spawned. */
	protected readonly skipped = new Set<string>();
	/** The view whose specs activation is walking: a key without stored state waits for its spec. */
	protected walking: View | null = null;
	/** Keys without an actor whose record an API call is committing: no actor of theirs starts meanwhile. */
	protected readonly reserved = new Set<string>();
	protected readonly settles = new SettleMemory();
	private timers: NodeJS.Timeout[] = [];
	protected busyCount = 0;
	protected leavingCount = 0;
	protected readonly lag = new LagHistogram();
	private readonly performLog: PerformLog | null;

	performs = 0;
	processed = 0;
	failures = 0;
	deadLettered = 0;
	timeouts = 0;

	constructor(options: RuntimeOptions) {
		this.options = options;
		this.durable = options.durable;
		this.store = options.durable.store;
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
			durable: this.durable,
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

	owns(key: string): boolean {
		return this.view !== null && this.view.ring.ownerOf(key) === this.self;
	}

	protected get active(): boolean {
		return this.state === "rehashing" || this.state === "ready";
	}

	/** Drops an idle actor and its mailbox from memory; its state and rows are already in the store. */
	protected release(actor: Actor, reason: TerminateReason): void {
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
		// Its rows that waited go first, before any row that arrives from now on.
		if (this.skipped.delete(id)) this.deal(this.store.messagesOf(id));
		// The first periodic perform falls anywhere in one interval, so a million actors spawned together do not all fire in one tick.
		if (interval > 0) this.wheel.schedule(actor, Math.random() * interval, Date.now());
		return actor;
	}

	/** Deals every pending row not dealt yet (after a settle, rows for new keys wait in the store). */
	protected rescan(): void {
		this.skipped.clear();
		let after = 0;
		for (;;) {
			const rows = this.store.scan(after, 5000);
			if (rows.length === 0) break;
			this.deal(rows);
			after = rows[rows.length - 1].seq;
		}
	}

	// ---- dealing rows to actors -------------------------------------------

	protected deal(rows: StoredMessage[]): void {
		for (const row of rows) {
			if (this.mailboxes.isDealt(row.seq)) continue;
			let actor = this.actors.get(row.key);
			if (!actor) {
				if (!this.owns(row.key)) continue;
				const spawned = this.active && this.settled ? this.activateOnDemand(row.key) : null;
				if (!spawned) {
					this.skipped.add(row.key);
					continue;
				}
				actor = spawned;
				// Spawning dealt the key's rows that waited, this one among them.
				if (this.mailboxes.isDealt(row.seq)) continue;
			}
			if (actor.flags & LEAVING) continue;
			this.mailboxes.add(actor, row);
			this.ready.push(actor);
		}
	}

	/** The actor of a key with rows and none: from its stored record, else (unless a walk of the specs is under way) from spawn(); none while an API call commits for the key. */
	private activateOnDemand(id: string): Actor | null {
		if (this.reserved.has(id)) return null;
		const record = this.store.actor(id);
		if (record && !record.deleted) return this.spawn(id, record.payload, record.timeout);
		if (this.walking !== null) return null;
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
			this.deal(this.store.messagesOf(actor.id));
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
	private retryOrDeadLetter(actor: Actor, rows: StoredMessage[], error: Error, dead: { id: string }[] | undefined): void {
		const deadIds = new Set((dead ?? []).map((d) => d.id));
		this.deadLettered += deadIds.size;
		const back: StoredMessage[] = [];
		for (const row of rows) {
			if (deadIds.has(row.id)) this.results.reject(row.id, error);
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

	protected logHeldByTimeout(actor: Actor): void {
		this.options.logger?.warn(`handoff waits for the perform of ${actor.id}: past the perform timeout (${this.performTimeoutMs} ms) and still running`);
	}

	private timeoutError(): Error {
		return new Error(`perform timed out after ${this.performTimeoutMs} ms`);
	}

	/** Runs work (a commit of put or del) with the actor held busy, so no perform starts on the state it replaces. */
	protected async holding<T>(actor: Actor | undefined, work: () => Promise<T>): Promise<T> {
		if (!actor) return work();
		actor.flags |= BUSY;
		this.busyCount++;
		try {
			return await work();
		} finally {
			actor.flags &= ~BUSY;
			this.busyCount--;
			this.idleWaiters.wake(actor);
			if (this.mailboxes.has(actor) && !(actor.flags & (RELEASED | BACKOFF))) this.ready.push(actor);
		}
	}

	protected async idle(actor: Actor): Promise<void> {
		while (actor.flags & BUSY) await this.idleWaiters.wait(actor);
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
