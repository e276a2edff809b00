/**
 * The chaos soak's action scheduler: a pure, seeded plan of what to do next.
 *
 * It tracks which (logical) nodes run and picks each next action among those
 * the constraints allow:
 * - never fewer than minNodes running, not even while a killed node is down
 *   (so scale-in and kill need more than minNodes running);
 * - never more than maxNodes running;
 * - never stop or kill the protected node (c1: the node started first, whose
 *   ingest holds RabbitMQ's single-active-consumer slot at the start).
 * The plan assumes every action it hands out is carried out; the soak stops
 * at the first one that is not.
 */
import type { Prng } from "./prng";

/**
 * stall: SIGSTOP past the heartbeat timeout, then SIGCONT; the node finds itself taken over,
 * exits with 75 and is started again. lose: SIGKILL and its data dir deleted, never back
 * (a later scale-out is its replacement, a new node with a new id and an empty dir).
 */
export type ActionKind = "scale-out" | "scale-in" | "kill-restart" | "close-amqp" | "stall" | "lose";

export const ACTION_KINDS: readonly ActionKind[] = ["scale-out", "scale-in", "kill-restart", "close-amqp", "stall", "lose"];

export interface Action {
	/** 1-based position in the plan. */
	seq: number;
	kind: ActionKind;
	/** Logical node name (c1, c2, …). */
	target: string;
	/** Wait this long before the action. */
	delayMs: number;
	/** kill-restart only: how long the node stays dead before its restart. */
	downMs?: number;
	/** Logical nodes running just before the action. */
	before: string[];
	/** Logical nodes running once the action is over. */
	after: string[];
}

export interface PlanOptions {
	initialNodes: number;
	/** Most nodes running at once (default initialNodes + 2). */
	maxNodes?: number;
	/** Fewest nodes running at any moment (default 2). */
	minNodes?: number;
	/** Delay before each action, ms, both ends included (default 8000..15000). */
	gapMs?: [number, number];
	/** Down time of a killed node before its restart, ms (default 2000..5000). */
	downMs?: [number, number];
	/** Never stopped or killed (default "c1"). */
	protectedNode?: string;
	/** Kinds this plan may use (default all). */
	kinds?: readonly ActionKind[];
}

export function nodeName(index: number): string {
	return `c${index}`;
}

export class ChaosPlan {
	readonly maxNodes: number;
	readonly minNodes: number;
	readonly protectedNode: string;
	private readonly rng: Prng;
	private readonly gapMs: [number, number];
	private readonly downMs: [number, number];
	private readonly kinds: readonly ActionKind[];
	private running: string[];
	private nextIndex: number;
	private seq = 0;

	constructor(rng: Prng, options: PlanOptions) {
		this.rng = rng;
		this.minNodes = options.minNodes ?? 2;
		this.maxNodes = options.maxNodes ?? options.initialNodes + 2;
		this.gapMs = options.gapMs ?? [8000, 15000];
		this.downMs = options.downMs ?? [2000, 5000];
		this.protectedNode = options.protectedNode ?? nodeName(1);
		this.kinds = options.kinds ?? ACTION_KINDS;
		if (!Number.isInteger(options.initialNodes) || options.initialNodes < this.minNodes) {
			throw new RangeError(`initialNodes must be a whole number of at least ${this.minNodes}, got ${options.initialNodes}`);
		}
		if (this.maxNodes < options.initialNodes) throw new RangeError(`maxNodes (${this.maxNodes}) is below initialNodes (${options.initialNodes})`);
		if (this.kinds.length === 0) throw new RangeError("a plan needs at least one action kind");
		this.running = Array.from({ length: options.initialNodes }, (_, i) => nodeName(i + 1));
		this.nextIndex = options.initialNodes + 1;
	}

	/** The logical nodes the plan believes run now. */
	get nodes(): readonly string[] {
		return this.running;
	}

	/** Kinds the constraints allow right now. */
	allowed(): ActionKind[] {
		const stoppable = this.running.filter((n) => n !== this.protectedNode).length > 0 && this.running.length > this.minNodes;
		const allowedNow: Record<ActionKind, boolean> = {
			"scale-out": this.running.length < this.maxNodes,
			"scale-in": stoppable,
			"kill-restart": stoppable,
			"close-amqp": this.running.length > 0,
			stall: stoppable,
			lose: stoppable,
		};
		return this.kinds.filter((kind) => allowedNow[kind]);
	}

	/** The next action, or null when none is allowed (e.g. only scale-out allowed and already at the maximum). */
	next(): Action | null {
		const allowed = this.allowed();
		if (allowed.length === 0) return null;
		const delayMs = this.rng.int(this.gapMs[0], this.gapMs[1]);
		const kind = this.rng.pick(allowed);
		const before = [...this.running];
		let target: string;
		let downMs: number | undefined;
		switch (kind) {
			case "scale-out":
				target = nodeName(this.nextIndex++);
				this.running = [...this.running, target];
				break;
			case "scale-in":
			case "lose":
				target = this.rng.pick(this.running.filter((n) => n !== this.protectedNode));
				this.running = this.running.filter((n) => n !== target);
				break;
			case "stall":
				target = this.rng.pick(this.running.filter((n) => n !== this.protectedNode));
				break;
			case "kill-restart":
				target = this.rng.pick(this.running.filter((n) => n !== this.protectedNode));
				downMs = this.rng.int(this.downMs[0], this.downMs[1]);
				break;
			case "close-amqp":
				target = this.rng.pick(this.running);
				break;
		}
		return { seq: ++this.seq, kind, target, delayMs, downMs, before, after: [...this.running] };
	}
}
