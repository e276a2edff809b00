/**
 * One keyhive node: the store, the topology, the shipping loop and (when the
 * node runs actors) the actor runtime, put together in the order the
 * single-owner protocol needs. Services reach it with nodeOf(broker) and only
 * wire transport and actions to it.
 */
import { ActorRuntime, type RuntimeOptions } from "./actors/runtime";
import type { ActorBehaviour } from "./actors/types";
import type { KeyhiveConfig } from "./config";
import { Shipper } from "./store/shipper";
import { Store, type Shipment } from "./store/store";
import { NotOwnerError } from "./topology/not-owner-error";
import { Topology, type TopologyParticipant, type TopologyState, type View } from "./topology/topology";

export interface Logger {
	info(msg: string): void;
	warn(msg: string): void;
	error(msg: string): void;
	debug?(msg: string): void;
}

/** How this node talks to the others; set by the services. */
export interface NodeTransport {
	announce(viewId: string): void;
	ship(node: string, viewId: string, shipment: Shipment): Promise<void>;
}

export interface IngestCounters {
	readonly ingested: number;
	readonly deadLettered: number;
	readonly backpressured: boolean;
}

export class KeyhiveNode {
	readonly config: KeyhiveConfig;
	readonly nodeID: string;
	readonly store: Store;
	readonly topology: Topology;
	readonly shipper: Shipper;
	runtime: ActorRuntime | null = null;
	/** Counters of this node's RabbitMQ consumer, when it runs one (for metrics). */
	ingest: IngestCounters | null = null;
	transport: NodeTransport = {
		announce: () => undefined,
		ship: () => Promise.reject(new Error("no transport")),
	};
	private readonly logger: Logger;
	private readonly listeners: TopologyParticipant[] = [];
	private leaving: Promise<void> | null = null;
	private readonly beforeLeave: (() => Promise<void> | void)[] = [];
	private users = 0;

	constructor(config: KeyhiveConfig, nodeID: string, logger: Logger) {
		this.config = config;
		this.nodeID = nodeID;
		this.logger = logger;
		this.store = Store.open(config.dataDir, nodeID, { dedupeWindowMs: config.dedupeWindowMs });
		this.topology = new Topology({
			self: nodeID,
			consensus: config.consensus,
			ringPoints: config.ringPoints,
			announce: (viewId) => this.transport.announce(viewId),
			logger,
		});
		this.shipper = new Shipper({
			store: this.store,
			self: nodeID,
			ship: (node, viewId, shipment) => this.transport.ship(node, viewId, shipment),
			isHeld: (key) => this.runtime?.holds(key) ?? false,
			batchRows: config.shipBatchRows,
			logger,
		});
		// One participant in a fixed order: actors are released before the shipper takes its snapshot.
		this.topology.addParticipant({
			onView: (view) => {
				this.runtime?.onView(view);
				this.shipper.onView(view);
				for (const l of this.listeners) l.onView?.(view);
			},
			handoff: async (view) => {
				await this.runtime?.handoff(view);
				await this.shipper.handoff(view);
			},
			onSettled: (view) => {
				this.runtime?.onSettled(view);
				for (const l of this.listeners) l.onSettled?.(view);
			},
			onStateChange: (from, to, view) => {
				this.runtime?.onStateChange(from, to);
				this.shipper.onStateChange(from, to);
				for (const l of this.listeners) l.onStateChange?.(from, to, view);
			},
		});
	}

	/** Runs actors of this behaviour on this node (the worker service). */
	attachRuntime(behaviour: ActorBehaviour, options: Partial<RuntimeOptions> = {}): ActorRuntime {
		if (this.runtime) throw new Error(`node ${this.nodeID} already runs an actor service`);
		this.runtime = new ActorRuntime({
			store: this.store,
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

	/** Work to do before the handoff of a graceful leave (ingest stops taking deliveries). */
	onLeave(hook: () => Promise<void> | void): void {
		this.beforeLeave.push(hook);
	}

	/** A listener for state changes and views (lifecycle hooks of the application). */
	addListener(listener: TopologyParticipant): void {
		this.listeners.push(listener);
	}

	/** Refuses a shipment unless this node owns every key in it in its current view. */
	receive(viewId: string, shipment: Shipment): { stored: number; duplicates: number } {
		const keys = new Set<string>();
		for (const m of shipment.messages) keys.add(m.key);
		for (const a of shipment.actors) keys.add(a.id);
		for (const p of shipment.processed) keys.add(p.key);
		const foreign = this.topology.active ? [...keys].filter((k) => this.topology.ownerOf(k) !== this.nodeID) : [...keys];
		if (foreign.length > 0) throw new NotOwnerError(this.nodeID, foreign);
		const result = this.store.receive(shipment);
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

	/** A service uses this node until it calls release(). */
	retain(): void {
		this.users++;
	}

	/** The last service to let go closes the store (after its own shutdown work). */
	release(): void {
		if (--this.users > 0) return;
		this.shipper.stop();
		this.store.close();
	}
}

const nodes = new WeakMap<object, KeyhiveNode>();

/** The node of a broker, made on first use. */
export function nodeOf(owner: object, make: () => KeyhiveNode): KeyhiveNode {
	let node = nodes.get(owner);
	if (!node) nodes.set(owner, (node = make()));
	return node;
}
