/**
 * Actors with rows waiting, run in the order they became ready: a bounded
 * number per turn of the event loop, so timers and I/O keep flowing while
 * a backlog drains.
 */
import { type Actor, BACKOFF, BUSY, LEAVING, QUEUED, RELEASED } from "./actor";

/** Actors run per turn at most. */
const BUDGET = 5000;

export class ReadyQueue {
	private queue: Actor[] = [];
	private scheduled = false;
	private readonly isActive: () => boolean;
	private readonly run: (actor: Actor, now: number) => void;

	constructor(isActive: () => boolean, run: (actor: Actor, now: number) => void) {
		this.isActive = isActive;
		this.run = run;
	}

	/** Queues the actor unless it is busy, backing off, leaving or queued already. */
	push(actor: Actor): void {
		if (actor.flags & (BUSY | BACKOFF | QUEUED | LEAVING)) return;
		actor.flags |= QUEUED;
		this.queue.push(actor);
		this.schedule();
	}

	/** Runs the queue on a later turn (again after the runtime became active). */
	schedule(): void {
		if (this.scheduled || !this.isActive()) return;
		this.scheduled = true;
		setImmediate(() => this.pump());
	}

	private pump(): void {
		this.scheduled = false;
		if (!this.isActive()) return;
		const queue = this.queue;
		const budget = Math.min(queue.length, BUDGET);
		const now = Date.now();
		for (let i = 0; i < budget; i++) {
			const actor = queue[i];
			actor.flags &= ~QUEUED;
			if (actor.flags & (BUSY | BACKOFF | LEAVING | RELEASED)) continue;
			this.run(actor, now);
		}
		this.queue = budget === queue.length ? [] : queue.slice(budget);
		if (this.queue.length > 0) this.schedule();
	}
}
