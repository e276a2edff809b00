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
 */
import type { ActorRecord, Commit, Headers, Store, StoredMessage } from "../store/store";
import type { TopologyParticipant, TopologyState, View } from "../topology/topology";
import { LagHistogram } from "./lag";
import { PerformLog } from "./perform-log";
import type { ActorBehaviour, ActorMessage, ActorSpec, PerformContext, PerformResult, TerminateReason } from "./types";
import { TimerWheel } from "./wheel";

const BUSY = 1;
const LEAVING = 2;
const BACKOFF = 4;
const QUEUED = 8;
/** Out of the Map: its wheel entry and queue slot are stale (checked instead of a Map lookup per perform). */
const RELEASED = 16;

class Actor {
	id: string;
	payload: unknown;
	timeout: number;
	due = 0;
	flags = 0;
	/** Seconds since the runtime started of the last perform, -1 if none. */
	last = -1;

	constructor(id: string, payload: unknown, timeout: number) {
		this.id = id;
		this.payload = payload;
		this.timeout = timeout;
	}
}

export interface ActorInfo {
	id: string;
	payload: unknown;
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
	defaultTimeout?: number;
	maxAttempts?: number;
	retryBaseMs?: number;
	retryMaxMs?: number;
	performTimeoutMs?: number;
	/** Messages per perform at most. */
	maxBatch?: number;
	tickMs?: number;
	payloadFormat?: "text" | "json";
	performLog?: string;
	/** A committed actor record for a key this node does not own (a replace with a new id). */
	onForeignRecord?(id: string): void;
	/** An actor was released: its rows may ship now. */
	onRelease?(): void;
	logger?: { info(msg: string): void; warn(msg: string): void; error(msg: string): void };
}

interface Finished {
	actor: Actor;
	rows: StoredMessage[];
	result: unknown;
	commit: Commit;
	removed: TerminateReason | null;
	failed: Error | null;
	started: number;
	update?: { payload: unknown; timeout: number } | null;
}

/** Longest stretch a long loop (activation) holds the event loop: well under the heartbeat timeout, long enough to keep locality. */
const SLICE_MS = 200;

const NO_MESSAGES: ActorMessage[] = Object.freeze([]) as unknown as ActorMessage[];

class Context implements PerformContext {
	readonly node: string;
	readonly attempt: number;
	/** The actor's key: its results move with it until published. */
	private readonly key: string;
	outbox: { key: string; body: string; headers?: Headers | null }[] | null = null;

	constructor(node: string, attempt: number, key: string) {
		this.node = node;
		this.attempt = attempt;
		this.key = key;
	}

	publish(body: unknown, headers?: Headers): void {
		(this.outbox ??= []).push({ key: this.key, body: JSON.stringify(body ?? null), headers: headers ?? null });
	}
}

export class ActorRuntime implements TopologyParticipant {
	private readonly store: Store;
	private readonly self: string;
	private readonly behaviour: ActorBehaviour;
	private readonly defaultTimeout: number;
	private readonly maxAttempts: number;
	private readonly retryBaseMs: number;
	private readonly retryMaxMs: number;
	private readonly performTimeoutMs: number;
	private readonly maxBatch: number;
	private readonly json: boolean;
	private readonly options: RuntimeOptions;
	private readonly startedAt = Date.now();

	private readonly actors = new Map<string, Actor>();
	private readonly mailboxes = new Map<Actor, StoredMessage[]>();
	/** Seqs of rows in a mailbox or in a perform. */
	private readonly dealt = new Set<number>();
	private readonly wheel: TimerWheel<Actor>;
	private ready: Actor[] = [];
	private finished: Finished[] = [];
	private readonly inflight = new Map<Actor, { started: number; rows: StoredMessage[]; ctx: Context }>();
	private readonly waiters = new Map<string, { resolve(v: unknown): void; reject(e: Error): void }>();
	private readonly idleWaiters = new Map<Actor, (() => void)[]>();
	private releaseWaiters: (() => void)[] = [];
	private view: View | null = null;
	private state: TopologyState = "down";
	private settled = false;
	/** Members of the last view this node settled on (null before the first). */
	private settledMembers: readonly string[] | null = null;
	/** A row of an owned key without an actor arrived before the settle and was left in the store. */
	private skippedUnsettled = false;
	/** Ids of actors released since the last settle because their key moved (a later view may give them back). */
	private readonly movedSinceSettle = new Set<string>();
	private timer: NodeJS.Timeout | null = null;
	private sweepTimer: NodeJS.Timeout | null = null;
	private pumpScheduled = false;
	private flushScheduled = false;
	private busyCount = 0;
	private leavingCount = 0;
	private readonly lag = new LagHistogram();
	private readonly performLog: PerformLog | null;
	private readyWaiters: (() => void)[] = [];

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
		this.defaultTimeout = options.defaultTimeout ?? 1000;
		this.maxAttempts = options.maxAttempts ?? 5;
		this.retryBaseMs = options.retryBaseMs ?? 100;
		this.retryMaxMs = options.retryMaxMs ?? 30_000;
		this.performTimeoutMs = options.performTimeoutMs ?? 30_000;
		this.maxBatch = options.maxBatch ?? 100;
		this.json = options.payloadFormat === "json";
		this.wheel = new TimerWheel<Actor>(options.tickMs ?? 10);
		this.performLog = options.performLog ? new PerformLog(options.performLog, options.self) : null;
		this.store.onStored((rows) => this.deal(rows));
	}

	/** Starts the wheel; actors arrive with the first settled view. */
	start(): void {
		if (this.timer) return;
		this.timer = setInterval(() => this.tick(), this.wheel.tickMs);
		this.sweepTimer = setInterval(() => this.sweepTimeouts(), Math.min(1000, this.performTimeoutMs));
	}

	// ---- topology participant -------------------------------------------

	onStateChange(_from: TopologyState, to: TopologyState): void {
		this.state = to;
		this.behaviour.handleStateChange?.(to);
		if (this.active) this.schedulePump();
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
		return new Promise((resolve) => this.releaseWaiters.push(resolve));
	}

	onSettled(view: View): void {
		if (this.view !== view) return;
		this.settled = true;
		const before = this.settledMembers;
		this.settledMembers = view.members;
		// Consistent hashing moves keys only to members that are new: a node that was a member of the last
		// settled view, with no member gone since and no key given away in a view in between coming back,
		// owns nothing new, so walking every spec would only cost time.
		let cameBack = false;
		for (const id of this.movedSinceSettle) if (this.owns(id)) cameBack = true;
		this.movedSinceSettle.clear();
		const mayGain = before === null || !before.includes(this.self) || before.some((m) => !view.members.includes(m)) || cameBack;
		const activation = mayGain ? this.activateOwned(view) : Promise.resolve(this.rescanIfSkipped());
		void activation.then(() => {
			for (const resolve of this.readyWaiters.splice(0)) resolve();
		});
	}

	/** Whether this node still holds the actor of key (its rows must not ship yet). */
	holds(key: string): boolean {
		return this.actors.has(key);
	}

	private get active(): boolean {
		return this.state === "rehashing" || this.state === "ready";
	}

	private owns(key: string): boolean {
		return this.view !== null && this.view.ring.ownerOf(key) === this.self;
	}

	/** Sticky: a leaving actor is released when idle even if a newer view gives its key back (it restarts from the store). */
	private leave(actor: Actor): void {
		if (!(actor.flags & LEAVING)) {
			actor.flags |= LEAVING;
			this.leavingCount++;
		}
		if (!(actor.flags & BUSY)) this.release(actor, "moved");
	}

	/** Drops an idle actor from memory; its state is already in the store. */
	private release(actor: Actor, reason: TerminateReason): void {
		this.actors.delete(actor.id);
		actor.flags |= RELEASED;
		this.wheel.cancel(actor);
		if (actor.flags & LEAVING) this.leavingCount--;
		if (reason === "moved") this.movedSinceSettle.add(actor.id);
		const mailbox = this.mailboxes.get(actor);
		if (mailbox) {
			for (const row of mailbox) this.dealt.delete(row.seq);
			this.mailboxes.delete(actor);
		}
		this.behaviour.terminate?.(actor.id, reason, actor.payload);
		this.notifyIdle(actor);
		this.options.onRelease?.();
		if (this.releaseWaiters.length > 0 && this.leavingCount === 0) {
			for (const resolve of this.releaseWaiters.splice(0)) resolve();
		}
	}

	/** Spawns the actors this node owns and does not hold yet: stored state first, then specs, then rows. */
	private async activateOwned(view: View): Promise<void> {
		// Read whole: a better-sqlite3 iterator left open across a yield would block the store.
		const records = [...this.store.actors()];
		const tombstones = new Set<string>();
		const slice = new TimeSlice();
		for (const record of records) {
			if (slice.due() && !(await this.yieldFor(view, slice))) return;
			if (this.actors.has(record.id) || !this.owns(record.id)) continue;
			if (record.deleted) tombstones.add(record.id);
			else this.spawn(record.id, record.payload, record.timeout);
		}
		const specs = this.behaviour.childrenSpecs ? await this.behaviour.childrenSpecs() : [];
		if (this.view !== view || this.state === "stopped") return;
		for (const spec of specs as Iterable<ActorSpec>) {
			if (slice.due() && !(await this.yieldFor(view, slice))) return;
			if (this.actors.has(spec.id) || tombstones.has(spec.id) || !this.owns(spec.id)) continue;
			this.spawn(spec.id, spec.payload ?? null, spec.timeout ?? this.defaultTimeout);
		}
		this.rescan();
	}

	/**
	 * Lets timers and I/O run in the middle of a long activation (heartbeats
	 * must go out, or peers would think this node dead); false when the view
	 * changed or the runtime stopped meanwhile.
	 */
	private async yieldFor(view: View, slice: TimeSlice): Promise<boolean> {
		await new Promise((resolve) => setImmediate(resolve));
		slice.restart();
		return this.view === view && this.state !== "stopped";
	}

	private spawn(id: string, payload: unknown, timeout: number): Actor {
		const init = this.behaviour.init?.(id, payload);
		const actor = new Actor(id, init === undefined ? payload : init, timeout);
		this.actors.set(id, actor);
		// The first periodic perform falls anywhere in one interval, so a million actors spawned together do not all fire in one tick.
		if (timeout > 0) this.wheel.schedule(actor, Math.random() * timeout, Date.now());
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
			this.deal(rows.filter((row) => !this.dealt.has(row.seq)));
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
			let mailbox = this.mailboxes.get(actor);
			if (!mailbox) this.mailboxes.set(actor, (mailbox = []));
			insertByStamp(mailbox, row);
			this.dealt.add(row.seq);
			this.enqueue(actor);
		}
	}

	private activateOnDemand(id: string): Actor {
		const record = this.store.actor(id);
		if (record && !record.deleted) return this.spawn(id, record.payload, record.timeout);
		const initial = this.behaviour.spawn?.(id) ?? {};
		return this.spawn(id, initial.payload ?? null, initial.timeout ?? this.defaultTimeout);
	}

	private enqueue(actor: Actor): void {
		if (actor.flags & (BUSY | BACKOFF | QUEUED | LEAVING)) return;
		actor.flags |= QUEUED;
		this.ready.push(actor);
		this.schedulePump();
	}

	private schedulePump(): void {
		if (this.pumpScheduled || !this.active) return;
		this.pumpScheduled = true;
		setImmediate(() => this.pump());
	}

	/** Runs queued actors, a bounded number per turn so timers and I/O keep flowing. */
	private pump(): void {
		this.pumpScheduled = false;
		if (!this.active) return;
		const queue = this.ready;
		const budget = Math.min(queue.length, 5000);
		const now = Date.now();
		for (let i = 0; i < budget; i++) {
			const actor = queue[i];
			actor.flags &= ~QUEUED;
			if (actor.flags & (BUSY | BACKOFF | LEAVING | RELEASED)) continue;
			this.run(actor, now);
		}
		this.ready = budget === queue.length ? [] : queue.slice(budget);
		if (this.ready.length > 0) this.schedulePump();
	}

	private tick(): void {
		const now = Date.now();
		if (!this.active) return;
		this.wheel.advance(now, (actor, late) => {
			if (actor.flags & (BUSY | LEAVING | RELEASED)) return;
			if (actor.flags & BACKOFF) {
				actor.flags &= ~BACKOFF;
				this.enqueue(actor);
				return;
			}
			this.lag.record(late);
			this.run(actor, now);
		});
	}

	// ---- performing --------------------------------------------------------

	private run(actor: Actor, now: number): void {
		const mailbox = this.mailboxes.get(actor);
		let rows: StoredMessage[] = [];
		if (mailbox) {
			rows = mailbox.length <= this.maxBatch ? mailbox : mailbox.slice(0, this.maxBatch);
			if (rows === mailbox) this.mailboxes.delete(actor);
			else mailbox.splice(0, rows.length);
		}
		actor.flags |= BUSY;
		this.busyCount++;
		this.wheel.cancel(actor);
		this.performs++;
		actor.last = Math.floor((now - this.startedAt) / 1000);
		const attempt = rows.length === 0 ? 1 : rows[0].attempts + 1;
		const ctx = new Context(this.self, attempt, actor.id);
		const started = this.performLog ? this.performLog.now() : 0;
		let result: PerformResult | Promise<PerformResult>;
		try {
			result = this.behaviour.perform(actor.id, actor.payload, rows.length === 0 ? NO_MESSAGES : rows.map((r) => this.toMessage(r)), ctx);
		} catch (err) {
			this.fail(actor, rows, toError(err), started);
			return;
		}
		if (result !== null && typeof result === "object" && typeof (result as Promise<unknown>).then === "function") {
			const entry = { started: now, rows, ctx };
			this.inflight.set(actor, entry);
			(result as Promise<PerformResult>).then(
				(value) => {
					if (this.inflight.get(actor) !== entry) return;
					this.inflight.delete(actor);
					this.complete(actor, rows, value, ctx, started);
				},
				(err) => {
					if (this.inflight.get(actor) !== entry) return;
					this.inflight.delete(actor);
					this.fail(actor, rows, toError(err), started);
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

	/** Interprets a perform's return shape into what must be committed. */
	private complete(actor: Actor, rows: StoredMessage[], value: PerformResult, ctx: Context, started: number): void {
		const commit: Commit = {};
		let result: unknown = value;
		let removed: TerminateReason | null = null;
		let changed = false;
		let payload = actor.payload;
		let timeout = actor.timeout;
		if (value === "halt") {
			removed = "halt";
			result = undefined;
			commit.actors = [{ id: actor.id, payload: actor.payload, timeout: actor.timeout, deleted: true }];
		} else if (value !== null && typeof value === "object") {
			const shape = value as Record<string, unknown>;
			if ("replace" in shape) {
				result = shape.replace;
				if (typeof shape.id === "string" && shape.id !== actor.id) {
					removed = "replaced";
					commit.actors = [
						{ id: actor.id, payload: actor.payload, timeout: actor.timeout, deleted: true },
						{ id: shape.id, payload: shape.replace, timeout: actor.timeout, deleted: false },
					];
				} else {
					payload = shape.replace;
					changed = true;
				}
			} else if ("timeout" in shape && typeof shape.timeout === "number") {
				timeout = Math.max(0, shape.timeout);
				result = shape.result;
				changed = true;
			} else if ("ok" in shape) {
				result = shape.ok;
			}
		}
		const update = changed ? { payload, timeout } : null;
		if (changed) commit.actors = [{ id: actor.id, payload, timeout, deleted: false }];
		if (rows.length > 0) commit.done = rows.map((r) => ({ seq: r.seq, id: r.id, key: r.key }));
		if (ctx.outbox) commit.outbox = ctx.outbox;
		if (!commit.done && !commit.actors && !commit.outbox) {
			this.finish({ actor, rows, result, commit, removed, failed: null, started, update });
			return;
		}
		this.finished.push({ actor, rows, result, commit, removed, failed: null, started, update });
		this.scheduleFlush();
	}

	private fail(actor: Actor, rows: StoredMessage[], error: Error, started: number): void {
		this.failures++;
		if (rows.length === 0) {
			this.options.logger?.warn(`actor ${actor.id}: periodic perform failed: ${error.message}`);
			this.finish({ actor, rows, result: undefined, commit: {}, removed: null, failed: error, started });
			return;
		}
		const dying = rows.filter((r) => r.attempts + 1 >= this.maxAttempts);
		const living = rows.filter((r) => r.attempts + 1 < this.maxAttempts);
		const commit: Commit = {};
		if (dying.length > 0) commit.dead = dying.map((r) => ({ seq: r.seq, reason: error.message || error.name }));
		if (living.length > 0) commit.failed = living.map((r) => r.seq);
		this.finished.push({ actor, rows, result: undefined, commit, removed: null, failed: error, started });
		this.scheduleFlush();
	}

	private scheduleFlush(): void {
		if (this.flushScheduled) return;
		this.flushScheduled = true;
		setImmediate(() => this.flush());
	}

	/** Commits every finished perform in one transaction, then lets their actors go on. */
	private flush(): void {
		this.flushScheduled = false;
		const batch = this.finished;
		if (batch.length === 0) return;
		this.finished = [];
		const merged: Commit = { done: [], failed: [], dead: [], actors: [], outbox: [] };
		for (const f of batch) {
			if (f.commit.done) merged.done!.push(...f.commit.done);
			if (f.commit.failed) merged.failed!.push(...f.commit.failed);
			if (f.commit.dead) merged.dead!.push(...f.commit.dead);
			if (f.commit.actors) merged.actors!.push(...f.commit.actors);
			if (f.commit.outbox) merged.outbox!.push(...f.commit.outbox);
		}
		try {
			this.store.commit(merged);
		} catch (err) {
			this.options.logger?.error(`commit of ${batch.length} performs failed: ${(err as Error).message}`);
			const ok: Finished[] = [];
			for (const f of batch) {
				try {
					this.store.commit(f.commit);
					ok.push(f);
				} catch (one) {
					if (f.failed) {
						this.finish({ ...f, commit: {}, removed: null });
					} else {
						this.fail(f.actor, f.rows, toError(one), f.started);
					}
				}
			}
			for (const f of ok) this.finish(f);
			return;
		}
		const ended = this.performLog ? this.performLog.now() : 0;
		for (const f of batch) {
			if (this.performLog && f.rows.length > 0) this.performLog.record(f.actor.id, f.started, ended, f.rows.length);
			this.finish(f);
		}
		this.performLog?.flush();
	}

	/** After a perform is over (and committed, when it had something to commit). */
	private finish(f: Finished): void {
		const { actor, rows } = f;
		actor.flags &= ~BUSY;
		this.busyCount--;
		for (const row of rows) this.dealt.delete(row.seq);
		if (f.failed) {
			const deadSeqs = new Set((f.commit.dead ?? []).map((d) => d.seq));
			this.deadLettered += deadSeqs.size;
			const back: StoredMessage[] = [];
			for (const row of rows) {
				if (deadSeqs.has(row.seq)) this.rejectWaiter(row.id, f.failed);
				else {
					row.attempts++;
					back.push(row);
				}
			}
			if (back.length > 0) {
				const mailbox = this.mailboxes.get(actor) ?? [];
				this.mailboxes.set(actor, back.concat(mailbox));
				for (const row of back) this.dealt.add(row.seq);
				actor.flags |= BACKOFF;
				this.wheel.schedule(actor, this.backoff(back[0].attempts), Date.now());
			}
		} else {
			if (f.update) {
				actor.payload = f.update.payload;
				actor.timeout = f.update.timeout;
			}
			this.processed += rows.length;
			for (const row of rows) this.resolveWaiter(row.id, f.result);
		}
		if (f.removed) {
			this.dropMailbox(actor);
			this.release(actor, f.removed);
			if (f.removed === "replaced") this.adoptReplacement(f.commit.actors![1]);
			// Rows that waited behind the last perform activate the key again.
			this.deal(this.store.messagesOf(actor.id).filter((r) => !this.dealt.has(r.seq)));
			return;
		}
		if (actor.flags & LEAVING) {
			this.release(actor, "moved");
			return;
		}
		this.notifyIdle(actor);
		if (actor.flags & BACKOFF) return;
		if (this.mailboxes.has(actor)) this.enqueue(actor);
		else if (actor.timeout > 0) this.wheel.schedule(actor, actor.timeout, Date.now());
	}

	private dropMailbox(actor: Actor): void {
		const mailbox = this.mailboxes.get(actor);
		if (!mailbox) return;
		for (const row of mailbox) this.dealt.delete(row.seq);
		this.mailboxes.delete(actor);
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

	private backoff(attempts: number): number {
		return Math.min(this.retryBaseMs * 2 ** Math.max(0, attempts - 1), this.retryMaxMs);
	}

	private sweepTimeouts(): void {
		const now = Date.now();
		for (const [actor, entry] of this.inflight) {
			if (now - entry.started < this.performTimeoutMs) continue;
			this.inflight.delete(actor);
			this.timeouts++;
			this.behaviour.handleTimeout?.(actor.id, actor.payload);
			this.fail(actor, entry.rows, new Error(`perform timed out after ${this.performTimeoutMs} ms`), 0);
		}
	}

	private resolveWaiter(id: string, value: unknown): void {
		const waiter = this.waiters.get(id);
		if (!waiter) return;
		this.waiters.delete(id);
		waiter.resolve(value);
	}

	private rejectWaiter(id: string, error: Error): void {
		const waiter = this.waiters.get(id);
		if (!waiter) return;
		this.waiters.delete(id);
		waiter.reject(error);
	}

	private notifyIdle(actor: Actor): void {
		const waiters = this.idleWaiters.get(actor);
		if (!waiters) return;
		this.idleWaiters.delete(actor);
		for (const resolve of waiters) resolve();
	}

	private async idle(actor: Actor): Promise<void> {
		while (actor.flags & BUSY) {
			await new Promise<void>((resolve) => {
				const list = this.idleWaiters.get(actor) ?? [];
				list.push(resolve);
				this.idleWaiters.set(actor, list);
			});
		}
	}

	// ---- the API behind the actions ----------------------------------------

	/** Resolves when this node is settled on its view and may create actors. */
	whenReady(): Promise<void> {
		if (this.settled && this.active) return Promise.resolve();
		return new Promise((resolve) => this.readyWaiters.push(resolve));
	}

	/** Resolves with the result of the perform that processes message id. */
	awaitResult(id: string): Promise<unknown> {
		return new Promise((resolve, reject) => this.waiters.set(id, { resolve, reject }));
	}

	forgetWaiter(id: string): void {
		this.waiters.delete(id);
	}

	/** Creates the actor or replaces its payload and timeout. */
	async put(id: string, payload: unknown, timeout?: number): Promise<ActorInfo> {
		await this.whenReady();
		this.assertOwner(id);
		let actor = this.actors.get(id);
		if (actor) await this.idle(actor);
		actor = this.actors.get(id);
		const finalTimeout = timeout ?? actor?.timeout ?? this.defaultTimeout;
		this.store.commit({ actors: [{ id, payload, timeout: finalTimeout, deleted: false }] });
		if (actor) {
			actor.payload = payload;
			actor.timeout = finalTimeout;
			this.wheel.cancel(actor);
			if (finalTimeout > 0) this.wheel.schedule(actor, finalTimeout, Date.now());
		} else {
			actor = this.spawn(id, payload, finalTimeout);
			this.rescan();
		}
		return this.info(actor);
	}

	/** Removes the actor; its pending messages are dead-lettered with reason "actor deleted". */
	async del(id: string): Promise<boolean> {
		await this.whenReady();
		this.assertOwner(id);
		const actor = this.actors.get(id);
		if (actor) await this.idle(actor);
		const current = this.actors.get(id);
		const pending = this.store.messagesOf(id);
		this.store.commit({
			dead: pending.map((m) => ({ seq: m.seq, reason: "actor deleted" })),
			actors: [{ id, payload: null, timeout: 0, deleted: true }],
		});
		this.deadLettered += pending.length;
		for (const m of pending) this.rejectWaiter(m.id, new Error("actor deleted"));
		if (current) {
			this.dropMailbox(current);
			this.release(current, "deleted");
		}
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
			timeout: actor.timeout,
			node: this.self,
			busy: (actor.flags & BUSY) !== 0,
			pending: this.store.messagesOf(actor.id).length,
			lastPerformAgoMs: actor.last < 0 ? null : Date.now() - (this.startedAt + actor.last * 1000),
		};
	}

	private assertOwner(id: string): void {
		if (!this.owns(id)) throw new Error(`${this.self} does not own ${id}`);
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
		if (this.timer) clearInterval(this.timer);
		if (this.sweepTimer) clearInterval(this.sweepTimer);
		this.timer = this.sweepTimer = null;
		this.state = "stopped";
		const deadline = Date.now() + this.performTimeoutMs;
		while ((this.busyCount > 0 || this.finished.length > 0) && Date.now() < deadline) {
			await new Promise((resolve) => setTimeout(resolve, 5));
		}
		for (const actor of this.actors.values()) {
			actor.flags |= RELEASED;
			this.behaviour.terminate?.(actor.id, "stopped", actor.payload);
		}
		this.actors.clear();
		this.mailboxes.clear();
		this.dealt.clear();
		this.performLog?.close();
	}
}

/** Tells when a loop has held the event loop for SLICE_MS. */
class TimeSlice {
	private started = Date.now();
	private count = 0;

	due(): boolean {
		// Date.now() is cheap but not free: look at the clock every 1024 items.
		return (++this.count & 1023) === 0 && Date.now() - this.started >= SLICE_MS;
	}

	restart(): void {
		this.started = Date.now();
	}
}

function insertByStamp(mailbox: StoredMessage[], row: StoredMessage): void {
	let i = mailbox.length;
	while (i > 0 && mailbox[i - 1].stamp > row.stamp) i--;
	if (i === mailbox.length) mailbox.push(row);
	else mailbox.splice(i, 0, row);
}

function toError(err: unknown): Error {
	return err instanceof Error ? err : new Error(String(err));
}
