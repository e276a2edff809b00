/**
 * The cluster manager's state machine (Cloister's monitor, made strict).
 *
 * It turns the member list it is given into views (a ring over the sorted
 * members), runs this node's handoff for each new view, and declares a view
 * settled only when every participant (every connected keyhive node, members
 * or not) has announced "handoff done" for that same view. Keys a node newly
 * owns are started only then, so no key is ever performed on two nodes.
 */
import { createHash } from "crypto";
import { Ring } from "../ring";

/** How long a failed handoff waits before it runs again. */
const HANDOFF_RETRY_MS = 1000;

export type TopologyState = "down" | "assembling" | "rehashing" | "ready" | "stopping" | "stopped";

export interface View {
	/** Ring id: equal on every node that sees the same members. */
	readonly id: string;
	readonly ring: Ring;
	readonly members: readonly string[];
}

/** A part of this node that takes part in view changes (the worker, the shipper, listeners). */
export interface TopologyParticipant {
	/** A new view is current: apply it at once (stop starting keys that moved, route by it). */
	onView?(view: View): void;
	/** Resolves when this part has handed off everything the view moved away from this node. */
	handoff?(view: View): Promise<void>;
	/** Every participant is done with this view: newly owned keys may start. */
	onSettled?(view: View): void;
	onStateChange?(from: TopologyState, to: TopologyState, view: View): void;
}

export interface TopologyOptions {
	self: string;
	consensus: number;
	ringPoints: number;
	/** Tells the other nodes this node is done with a view. */
	announce(viewId: string): void;
	logger?: { info(msg: string): void; warn(msg: string): void };
}

/**
 * The view of these members: the ring over them (ringPoints per member), its id and its sorted
 * members. generation names the node instances taking part (empty without durable journals): a
 * node that restarts as a new instance makes a new view, whose handoff takes over the old one.
 */
export function viewOf(members: Iterable<string>, ringPoints?: number, generation = ""): View {
	const ring = Ring.of(members, ringPoints);
	const id = generation === "" ? ring.id : `${ring.id}.${createHash("sha1").update(generation).digest("hex").slice(0, 8)}`;
	return { id, ring, members: ring.members };
}

const EMPTY: View = viewOf([]);

export class Topology {
	private readonly options: TopologyOptions;
	private readonly parts: TopologyParticipant[] = [];
	private currentState: TopologyState = "down";
	private currentView: View = EMPTY;
	private settled: View | null = null;
	private members: string[] = [];
	private participants: string[] = [];
	private generation = "";
	/** The latest view each node announced done for. */
	private readonly doneViews = new Map<string, string>();
	private started = false;
	private leaving = false;
	private rehashStartedAt = 0;
	/** Duration of the last completed rehash, in ms. */
	lastRehashMs = 0;
	private leaveWaiters: (() => void)[] = [];

	constructor(options: TopologyOptions) {
		this.options = options;
	}

	get self(): string {
		return this.options.self;
	}

	get state(): TopologyState {
		return this.currentState;
	}

	get view(): View {
		return this.currentView;
	}

	/** The last view every participant finished handing off for. */
	get settledView(): View | null {
		return this.settled;
	}

	get isMember(): boolean {
		return this.currentView.members.includes(this.options.self);
	}

	/** Whether this node may perform and route: it has consensus and is not leaving. */
	get active(): boolean {
		return this.currentState === "rehashing" || this.currentState === "ready";
	}

	ownerOf(key: string): string | null {
		return this.currentView.ring.ownerOf(key);
	}

	/** Participants of the current view that have not announced done for it. */
	waitingFor(): string[] {
		return this.participants.filter((p) => this.doneViews.get(p) !== this.currentView.id);
	}

	addParticipant(part: TopologyParticipant): void {
		this.parts.push(part);
	}

	/** Discovery is over: from now on member lists are trusted. */
	start(): void {
		this.started = true;
		this.evaluate();
	}

	/**
	 * The cluster as discovery sees it. members: nodes running the worker
	 * service; participants: every connected keyhive node (they may hold rows);
	 * generation: the journal instances of the participants, sorted and joined.
	 */
	update(members: Iterable<string>, participants: Iterable<string>, generation = ""): void {
		this.members = [...new Set(members)].sort();
		this.generation = generation;
		this.participants = [...new Set([...participants, this.options.self])].sort();
		for (const node of [...this.doneViews.keys()]) if (!this.participants.includes(node)) this.doneViews.delete(node);
		this.evaluate();
		// A leaving node answers no questions (its services are gone from discovery), so a node that started
		// listening after its announcement would wait for it until it disconnects: say it again on every change.
		if (this.leaving && this.currentState === "stopping" && this.doneFor() === this.currentView.id) this.options.announce(this.currentView.id);
	}

	/** A node says it has handed off everything for a view. */
	handoffDone(node: string, viewId: string): void {
		this.doneViews.set(node, viewId);
		this.checkBarrier();
	}

	/** This node's own announcement state, for peers that ask. */
	doneFor(): string | undefined {
		return this.doneViews.get(this.options.self);
	}

	/**
	 * Graceful leave: drop out of the ring, hand everything off, and resolve
	 * when that is done (or when no other member exists to take it).
	 */
	leave(): Promise<void> {
		this.leaving = true;
		const done = new Promise<void>((resolve) => this.leaveWaiters.push(resolve));
		this.evaluate();
		return done;
	}

	/** The node is gone: final state. */
	stopped(): void {
		this.transition("stopped");
	}

	private transition(to: TopologyState): void {
		const from = this.currentState;
		if (from === to) return;
		this.currentState = to;
		this.options.logger?.info(`topology: ${from} → ${to} (view ${this.currentView.id}, ${this.currentView.members.length} members)`);
		for (const part of this.parts) part.onStateChange?.(from, to, this.currentView);
	}

	private evaluate(): void {
		if (!this.started || this.currentState === "stopped") return;
		const members = this.leaving ? this.members.filter((m) => m !== this.options.self) : this.members;
		const enough = this.leaving ? true : members.length >= this.options.consensus;
		if (!enough) {
			this.settled = null;
			if (this.currentView !== EMPTY) this.setView(EMPTY);
			this.transition("assembling");
			return;
		}
		const view = viewOf(members, this.options.ringPoints, this.generation);
		if (view.id === this.currentView.id && this.currentState !== "assembling" && this.currentState !== "down") {
			if (this.leaving && this.currentState !== "stopping") {
				this.transition("stopping");
				void this.runHandoff(this.currentView);
				return;
			}
			this.checkBarrier();
			return;
		}
		this.setView(view);
		this.transition(this.leaving ? "stopping" : "rehashing");
		this.rehashStartedAt = Date.now();
		void this.runHandoff(this.currentView);
	}

	private setView(view: View): void {
		this.currentView = view;
		// Only announcements made after this node took the view count: an old "done" for an
		// equal id (members that flapped back) is stale. Peers are asked again while rehashing.
		this.doneViews.clear();
		for (const part of this.parts) part.onView?.(view);
	}

	/** Runs every participant's handoff for view, all of them again after a failure (each is idempotent), until it is done or the view is old. */
	private async runHandoff(view: View): Promise<void> {
		for (;;) {
			try {
				for (const part of this.parts) {
					if (this.currentView !== view) return;
					await part.handoff?.(view);
				}
				break;
			} catch (err) {
				if (this.currentView !== view) return;
				this.options.logger?.warn(`handoff for view ${view.id} failed (${(err as Error).message}); trying again in ${HANDOFF_RETRY_MS / 1000} s`);
				await new Promise((resolve) => setTimeout(resolve, HANDOFF_RETRY_MS));
			}
		}
		if (this.currentView !== view) return;
		this.doneViews.set(this.options.self, view.id);
		this.options.announce(view.id);
		if (this.leaving) {
			for (const resolve of this.leaveWaiters.splice(0)) resolve();
			return;
		}
		this.checkBarrier();
	}

	private checkBarrier(): void {
		if (this.currentState !== "rehashing") return;
		if (this.waitingFor().length > 0) return;
		this.settled = this.currentView;
		this.lastRehashMs = Date.now() - this.rehashStartedAt;
		this.transition("ready");
		for (const part of this.parts) part.onSettled?.(this.currentView);
	}
}
