/**
 * One RabbitMQ connection that keeps itself up.
 *
 * It reconnects with exponential backoff and tells its users through
 * onConnected hooks, so consumers and publishers (re)create their channels on
 * every connect. Connection and channel errors are logged, never thrown at the
 * process: a node without RabbitMQ keeps running and says so once.
 */
import * as amqp from "amqplib";
import type { ChannelModel } from "amqplib";
import { redactUrl } from "../config";

export interface Logger {
	info(msg: string): void;
	warn(msg: string): void;
	error(msg: string): void;
	debug(msg: string): void;
}

export type ConnectionState = "idle" | "connecting" | "connected" | "lost" | "reconnecting" | "closed";

export interface AmqpConnectionOptions {
	/** Shown by the broker as the connection_name client property (rabbitmqctl list_connections client_properties). */
	name: string;
	logger: Logger;
	/** First retry delay; doubles per failed attempt up to maxDelayMs. */
	minDelayMs?: number;
	maxDelayMs?: number;
}

type ConnectedHook = (model: ChannelModel) => void | Promise<void>;

/** How long a TCP connect + AMQP handshake may take before the attempt counts as failed. */
const CONNECT_TIMEOUT_MS = 10_000;

export class AmqpConnection {
	/** The URL with its password replaced by ***: the only form that is ever logged. */
	readonly shownUrl: string;
	private readonly url: string;
	private readonly options: Required<AmqpConnectionOptions>;
	private readonly hooks: ConnectedHook[] = [];
	private model: ChannelModel | undefined;
	private state: ConnectionState = "idle";
	private failedAttempts = 0;
	private retryTimer: NodeJS.Timeout | undefined;

	constructor(url: string, options: AmqpConnectionOptions) {
		this.url = url;
		this.shownUrl = redactUrl(url);
		this.options = { minDelayMs: 100, maxDelayMs: 5000, ...options };
	}

	get isConnected(): boolean {
		return this.state === "connected";
	}

	get status(): ConnectionState {
		return this.state;
	}

	/** The live connection, or undefined while there is none. */
	get current(): ChannelModel | undefined {
		return this.isConnected ? this.model : undefined;
	}

	/** Starts connecting in the background; never throws, never rejects. */
	start(): void {
		if (this.state !== "idle") return;
		this.enter("connecting", "debug", `connecting to RabbitMQ at ${this.shownUrl} as "${this.options.name}"`);
		void this.attempt();
	}

	/** Runs hook with the connection now (when connected) and after every later (re)connect. */
	onConnected(hook: ConnectedHook): void {
		this.hooks.push(hook);
		if (this.model && this.isConnected) this.runHook(hook, this.model);
	}

	async close(): Promise<void> {
		if (this.state === "closed") return;
		clearTimeout(this.retryTimer);
		const model = this.model;
		this.model = undefined;
		this.enter("closed", "info", `closed the RabbitMQ connection to ${this.shownUrl}`);
		await model?.close().catch(() => undefined);
	}

	private async attempt(): Promise<void> {
		this.retryTimer = undefined;
		let model: ChannelModel;
		try {
			model = await amqp.connect(this.url, {
				clientProperties: { connection_name: this.options.name },
				timeout: CONNECT_TIMEOUT_MS,
			});
		} catch (err) {
			this.attemptFailed(err);
			return;
		}
		if (this.state === "closed") {
			await model.close().catch(() => undefined);
			return;
		}
		this.model = model;
		this.failedAttempts = 0;
		// An "error" event is always followed by "close", which carries the reason: logging both would say it twice.
		model.on("error", () => undefined);
		model.on("close", (err?: Error) => this.lost(model, err));
		model.on("blocked", (reason: string) => this.options.logger.warn(`RabbitMQ blocked this connection (${reason}): publishing waits`));
		model.on("unblocked", () => this.options.logger.info("RabbitMQ unblocked this connection"));
		const again = this.state === "reconnecting";
		this.enter("connected", "info", `${again ? "reconnected" : "connected"} to RabbitMQ at ${this.shownUrl}`);
		for (const hook of this.hooks) this.runHook(hook, model);
	}

	private attemptFailed(err: unknown): void {
		if (this.state === "closed") return;
		const delay = this.nextDelay();
		if (this.state === "connecting") {
			this.enter("reconnecting", "warn", `RabbitMQ not reachable at ${this.shownUrl} (${reasonOf(err)}); retrying in the background`);
		} else {
			this.options.logger.debug(`RabbitMQ still not reachable (${reasonOf(err)}); next attempt in ${delay} ms`);
		}
		this.retryTimer = setTimeout(() => void this.attempt(), delay);
	}

	private lost(model: ChannelModel, err: Error | undefined): void {
		if (model !== this.model || this.state === "closed") return;
		this.model = undefined;
		this.enter("lost", "warn", `RabbitMQ connection to ${this.shownUrl} lost (${err ? reasonOf(err) : "closed by the broker"})`);
		const delay = this.nextDelay();
		this.enter("reconnecting", "info", `reconnecting to RabbitMQ at ${this.shownUrl}`);
		this.retryTimer = setTimeout(() => void this.attempt(), delay);
	}

	/** Exponential backoff with "equal jitter": half fixed, half random, so a fleet does not retry in lockstep. */
	private nextDelay(): number {
		const { minDelayMs, maxDelayMs } = this.options;
		const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** this.failedAttempts);
		this.failedAttempts++;
		return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
	}

	private enter(state: ConnectionState, level: keyof Logger, line: string): void {
		this.state = state;
		this.options.logger[level](line);
	}

	private runHook(hook: ConnectedHook, model: ChannelModel): void {
		Promise.resolve()
			.then(() => hook(model))
			.catch((err) => this.options.logger.error(`RabbitMQ setup after connect failed: ${reasonOf(err)}`));
	}
}

/** A short reason for a log line: the socket error code or the broker's message, never a URL. */
export function reasonOf(err: unknown): string {
	if (err && typeof err === "object") {
		const { code, message } = err as { code?: unknown; message?: unknown };
		if (typeof code === "string") return code;
		if (typeof message === "string" && message !== "") return redactUrl(message);
	}
	return String(err);
}
