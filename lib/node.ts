/**
 * One keyhive node: the store, the topology, the shipping loop and (when the
 * node runs actors) the actor runtime, put together in the order the
 * single-owner protocol needs. It is built with what it needs to talk to the
 * other nodes; services reach it with nodeOf(broker), attach the parts they run
 * (actors, ingest) and wire actions to it. It starts once, after checking its
 * services are all there, and stops once however many times it is asked to.
 */
import { ActorRuntime, type RuntimeOptions } from "./actors/runtime";
import type { ActorBehaviour } from "./actors/types";
import type { KeyhiveConfig } from "./config";
import { DurableStore } from "./durable/durable-store";
import type { Journal } from "./durable/journal";
import { openJournal } from "./durable/open-journal";
import { dropStaleStore, markJournaled } from "./durable/stale-store";
import type { EnteringRow } from "./durable/records";
import { type OtherJournals, Takeover } from "./durable/takeover";
import type { InboxSink } from "./ingest/consumer";
import { NotRoutableError, Router } from "./ingest/router";
import { Shipper } from "./store/shipper";
import { type NewMessage, type Shipment, Store } from "./store/store";
import { NotOwnerError } from "./topology/not-owner-error";
import { Topology, type TopologyParticipant, type TopologyState, type View } from "./topology/topology";

export interface Logger {
	info(msg: string): void;
	warn(msg: string): void;
	error(msg: string): void;
	debug?(msg: string): void;
}

/** How this node talks to the others; given at construction. */
export interface NodeTransport {
	announce(viewId: string): void;
	/** Hands a shipment to the owner's store; resolves with what it stored once that is durable there. */
	ship(node: string, viewId: string, shipment: Shipment): Promise<{ stored: number; duplicates: number }>;
}

/** Rows routed by an inbox consumer older than one this node has heard from: that consumer lost the inbox. */
export class StaleConsumerError extends Error {
	constructor(epoch: number, newest: number) {
		super(`rows routed by an inbox consumer of epoch ${epoch}, older than epoch ${newest}: that consumer no longer holds the inbox`);
		this.name = "StaleConsumerError";
	}
}

export interface IngestCounters {
	readonly ingested: number;
	readonly deadLettered: number;
	readonly backpressured: boolean;
}

/**
 * The services every keyhive node runs: its peers hand keys off to `store` and
 * ask `topology` which view it finished; a node without one would make them retry forever.
 */
export const NODE_SERVICES: readonly string[] = ["store", "topology"];

/** A node put together without a part it needs: a setup mistake, so it is logged as its one line, without a stack. */
export class NodeWiringError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "NodeWiringError";
		this.stack = `${this.name}: ${message}`;
	}
}

export class KeyhiveNode {
	readonly config: KeyhiveConfig;
	readonly nodeID: string;
	readonly store: Store;
	/** The store's changes, each made durable in this node's journal first. */
	readonly durable: DurableStore;
	readonly topology: Topology;
	readonly shipper: Shipper;
	readonly takeover: Takeover;
	readonly router: Router;
	runtime: ActorRuntime | null = null;
	private journal: Journal | null = null;
	private opening: Promise<void> | null = null;
	private live: ReadonlyMap<string, string | null> = new Map();
	private journals: OtherJournals | null = null;
	/** The newest inbox consumer epoch seen in rows routed here. */
	private inboxEpoch = 0;
	private readonly fencedHooks: ((reason: string) => void)[] = [];
	private fencedReason: string | null = null;
	private ingestCounters: IngestCounters | null = null;
	private readonly logger: Logger;
	private readonly listeners: TopologyParticipant[] = [];
	private leaving: Promise<void> | null = null;
	private stopping: Promise<void> | null = null;
	private readonly beforeLeave: (() => Promise<void> | void)[] = [];
	private readonly afterLeave: (() => Promise<void> | void)[] = [];

	constructor(config: KeyhiveConfig, nodeID: string, logger: Logger, transport: NodeTransport) {
		this.config = config;
		this.nodeID = nodeID;
		this.logger = logger;
		// With a transporter the durable copy is in JetStream: the file of an earlier instance is stale.
		if (config.transporter) dropStaleStore(config.dataDir, nodeID);
		this.store = Store.open(config.dataDir, nodeID, { dedupeWindowMs: config.dedupeWindowMs });
		this.durable = new DurableStore(this.store);
		this.topology = new Topology({
			self: nodeID,
			consensus: config.consensus,
			ringPoints: config.ringPoints,
			announce: (viewId) => transport.announce(viewId),
			logger,
		});
		this.shipper = new Shipper({
			durable: this.durable,
			self: nodeID,
			ship: (node, viewId, shipment) => transport.ship(node, viewId, shipment),
			isHeld: (key) => this.runtime?.holds(key) ?? false,
			batchRows: config.shipBatchRows,
			logger,
		});
		this.takeover = new Takeover({
			self: nodeID,
			durable: this.durable,
			journals: () => this.journals,
			liveNodes: () => this.live,
			confirmOwner: () => this.durable.journal.confirmOwner(),
			graceMs: config.discoveryMs + 2 * config.heartbeatTimeoutS * 1000 + 3000,
			isCurrent: (view) => this.topology.view === view,
			logger,
		});
		this.router = new Router({
			self: nodeID,
			topology: this.topology,
			durable: this.durable,
			ship: (node, viewId, shipment) => transport.ship(node, viewId, shipment),
			batchRows: config.shipBatchRows,
		});
		// One participant in a fixed order: actors are released, lost instances taken over, and then the shipper takes its snapshot.
		this.topology.addParticipant({
			onView: (view) => {
				this.runtime?.onView(view);
				this.shipper.onView(view);
				for (const l of this.listeners) l.onView?.(view);
			},
			handoff: async (view) => {
				await this.runtime?.handoff(view);
				await this.takeover.handoff(view);
				await this.shipper.handoff(view);
			},
			onSettled: (view) => {
				this.runtime?.onSettled(view);
				for (const l of this.listeners) l.onSettled?.(view);
			},
			onStateChange: (from, to, view) => {
				this.journal?.holdSnapshots(to !== "ready");
				this.runtime?.onStateChange(from, to);
				this.shipper.onStateChange(from, to);
				for (const l of this.listeners) l.onStateChange?.(from, to, view);
			},
		});
	}

	/**
	 * Opens the journal (JetStream with a transporter, the SQLite file itself without): once,
	 * before the node takes part in anything. A store left by a node that ran without a
	 * transporter is adopted into the journal. Throws one line when JetStream is missing or refuses.
	 */
	open(): Promise<void> {
		this.opening ??= (async () => {
			const adopt = this.config.transporter !== undefined && !this.store.isEmpty;
			const opened = await openJournal(this.config, this.nodeID, this.store, this.logger);
			this.journal = opened.journal;
			this.journals = opened.others;
			this.durable.use(opened.journal);
			opened.journal.onFenced((reason) => this.fenced(reason));
			if (adopt) {
				for (let next = this.store.snapshotPart(null, 256 * 1024); next; next = this.store.snapshotPart(next.cursor, 256 * 1024)) {
					await this.durable.receive(next.part);
				}
				this.logger.info(`adopted what ${this.store.file} held into the journal`);
			}
			if (opened.journal.instance) {
				// Only now is the file stale after a crash: one during the adoption adopts it again at the next start.
				this.store.setMeta("instance", opened.journal.instance);
				markJournaled(this.config.dataDir, this.nodeID, opened.journal.instance);
				// From now on the file is never read after a crash: syncing it to the disk would buy nothing.
				this.store.setSynchronous("OFF");
			}
		})();
		return this.opening;
	}

	/** This node's journal instance (null without JetStream). */
	get instance(): string | null {
		return this.journal?.instance ?? null;
	}

	/** The keyhive nodes in discovery and the journal instance each advertises (null: not yet open); this node is one of them. */
	setLiveNodes(nodes: ReadonlyMap<string, string | null>): void {
		const live = new Map(nodes);
		live.set(this.nodeID, this.instance);
		this.live = live;
		this.takeover.noteLive(live);
	}

	/** Called once if another node takes this instance over: the node must stop (a new instance may start). */
	onFenced(hook: (reason: string) => void): void {
		this.fencedHooks.push(hook);
		if (this.fencedReason !== null) hook(this.fencedReason);
	}

	get isFenced(): boolean {
		return this.fencedReason !== null;
	}

	private fenced(reason: string): void {
		if (this.fencedReason !== null) return;
		this.fencedReason = reason;
		this.logger.error(`fenced: ${reason}; this node holds nothing any more and stops`);
		this.shipper.stop();
		void this.runtime?.stop();
		for (const hook of this.fencedHooks) hook(reason);
	}

	/**
	 * Stores rows given through an action (store.append, actor calls) at their owners, stamped here when
	 * they have none; resolves once all are durable. A node without a view keeps them until a view
	 * moves them to their owners; the inbox waits instead (lib/ingest/consumer.ts), as the order of its
	 * rows across consumers rests on routing them at once.
	 */
	async route(messages: NewMessage[]): Promise<{ stored: number; duplicates: number }> {
		const rows: EnteringRow[] = await this.durable.stamped(messages);
		if (!this.topology.active) {
			// A leaving node hands off what it holds once: rows kept after that would go with its journal.
			const state = this.topology.state;
			if (state === "stopping" || state === "stopped") throw new NotRoutableError(state);
			const local = await this.durable.append(rows);
			return { stored: local.stored.length, duplicates: local.duplicates };
		}
		return this.router.route(rows);
	}

	/** Where the inbox consumer's rows go: a new epoch per channel, this node's stamps, the router. */
	inboxSink(): InboxSink {
		return {
			store: this.store,
			newEpoch: async () => {
				await this.durable.stamps.renew();
				return this.durable.stamps.current;
			},
			stamp: (messages) => this.durable.stamped(messages),
			route: (rows, epoch) => this.router.route(rows, epoch),
		};
	}

	/** Runs actors of this behaviour on this node (the worker service). */
	attachRuntime(behaviour: ActorBehaviour, options: Partial<RuntimeOptions> = {}): ActorRuntime {
		if (this.runtime) throw new Error(`node ${this.nodeID} already runs an actor service`);
		this.runtime = new ActorRuntime({
			durable: this.durable,
			self: this.nodeID,
			behaviour,
			maxAttempts: this.config.maxAttempts,
			retryBaseMs: this.config.retryBaseMs,
			performTimeoutMs: this.config.performTimeoutMs,
			maxBatch: this.config.maxBatch,
			payloadFormat: this.config.payloadFormat,
			performLog: this.config.performLog,
			onRelease: () => this.shipper.kick(),
			onForeignRecord: (id) => this.shipper.noteKey(id),
			logger: this.logger,
			...options,
		});
		return this.runtime;
	}

	/** The counters of this node's RabbitMQ consumer (the ingest service), for metrics. */
	attachIngest(counters: IngestCounters): void {
		if (this.ingestCounters) throw new Error(`node ${this.nodeID} already runs an ingest service`);
		this.ingestCounters = counters;
	}

	get ingest(): IngestCounters | null {
		return this.ingestCounters;
	}

	/** Work to do before the handoff of a graceful leave (ingest stops taking deliveries). */
	onLeave(hook: () => Promise<void> | void): void {
		this.beforeLeave.push(hook);
	}

	/** Work to do after the leave, before the store closes (ingest drains the outbox and disconnects). */
	onStop(hook: () => Promise<void> | void): void {
		this.afterLeave.push(hook);
	}

	/** Throws, with one line naming them, when services the node needs are not among these. */
	checkServices(services: Iterable<string>): void {
		const running = new Set(services);
		const missing = NODE_SERVICES.filter((name) => !running.has(name));
		if (missing.length > 0) {
			throw new NodeWiringError(
				`keyhive node ${this.nodeID} cannot start without the ${missing.join(" and ")} service${missing.length > 1 ? "s" : ""} (load services/${missing[0]}.service.ts)`,
			);
		}
	}

	/** A listener for state changes and views (lifecycle hooks of the application). */
	addListener(listener: TopologyParticipant): void {
		this.listeners.push(listener);
	}

	/**
	 * Refuses a shipment unless this node owns every key in it in its current view, and rows
	 * routed by an inbox consumer older than one heard from; resolves once it is durable.
	 */
	async receive(viewId: string, shipment: Shipment): Promise<{ stored: number; duplicates: number }> {
		const keys = new Set<string>();
		for (const m of shipment.messages) keys.add(m.key);
		for (const a of shipment.actors) keys.add(a.id);
		for (const p of shipment.processed) keys.add(p.key);
		const foreign = this.topology.active ? [...keys].filter((k) => this.topology.ownerOf(k) !== this.nodeID) : [...keys];
		if (foreign.length > 0) throw new NotOwnerError(this.nodeID, foreign);
		if (shipment.routed !== undefined) {
			if (shipment.routed < this.inboxEpoch) throw new StaleConsumerError(shipment.routed, this.inboxEpoch);
			this.inboxEpoch = shipment.routed;
		}
		const result = await this.durable.receive(shipment);
		if (viewId !== this.topology.view.id) this.logger.debug?.(`took a shipment made for view ${viewId} (mine is ${this.topology.view.id})`);
		return { stored: result.stored.length, duplicates: result.duplicates };
	}

	get state(): TopologyState {
		return this.topology.state;
	}

	get view(): View {
		return this.topology.view;
	}

	/**
	 * Graceful leave: stop taking keys, finish performs, hand everything off,
	 * then stop. Bounded by leaveTimeoutMs; what is not handed off by then stays
	 * on disk and ships when this node comes back.
	 */
	leave(): Promise<void> {
		this.leaving ??= (async () => {
			const started = Date.now();
			for (const hook of this.beforeLeave) await hook();
			let timer: NodeJS.Timeout | undefined;
			const deadline = new Promise<boolean>((resolve) => {
				timer = setTimeout(() => resolve(true), this.config.leaveTimeoutMs);
			});
			// A node whose topology never started (its transporter never connected) owns no key and has nothing in flight.
			const timedOut = this.topology.state === "down" ? false : await Promise.race([this.topology.leave().then(() => false), deadline]);
			clearTimeout(timer);
			const left = this.store.pendingCount;
			const dead = this.store.deadCount;
			const stay = `${left} rows${dead > 0 ? ` and ${dead} dead letters` : ""} stay in ${this.store.file}`;
			if (timedOut) {
				this.logger.warn(`leave timed out after ${this.config.leaveTimeoutMs} ms; ${stay}`);
			} else if (left + dead > 0) {
				this.logger.info(`left in ${Date.now() - started} ms; no other member to take them, so ${stay}`);
			} else {
				this.logger.info(`left in ${Date.now() - started} ms; everything handed off`);
			}
			this.shipper.stop();
			await this.runtime?.stop();
			this.topology.stopped();
		})();
		return this.leaving;
	}

	/**
	 * Leaves, runs the stop work of the parts, and closes the store: once, however
	 * many services (or repeated broker stops) ask, and every caller waits for it.
	 */
	stop(): Promise<void> {
		this.stopping ??= (async () => {
			await this.leave();
			for (const hook of this.afterLeave) await hook();
			this.shipper.stop();
			// Everything handed off: nobody needs to take this journal over.
			if (this.journal && !this.isFenced && this.store.isEmpty) await this.journal.retire().catch(() => undefined);
			await this.journal?.close().catch(() => undefined);
			this.store.close();
		})();
		return this.stopping;
	}
}

const nodes = new WeakMap<object, KeyhiveNode>();

/** The node of a broker, made on first use. */
export function nodeOf(owner: object, make: () => KeyhiveNode): KeyhiveNode {
	let node = nodes.get(owner);
	if (!node) nodes.set(owner, (node = make()));
	return node;
}
