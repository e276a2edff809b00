/**
 * A nats-server of a test's own, on a free loopback port: with a user and
 * password, a token or no auth; stopped gracefully or killed like a crash.
 * It runs JetStream (a node with a transporter keeps its journal there), its
 * store in <dir>/js-<port>, which outlives a stop so a restart finds its streams;
 * `{ jetstream: false }` starts one without, as a misconfigured deployment would.
 */
import { spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { waitFor } from "./wait";

const NATS_SERVER = process.env.TEST_NATS_SERVER ?? "/usr/sbin/nats-server";

export type NatsAuth = { user: string; password: string } | { token: string };

export interface NatsServerOptions {
	/** Run JetStream (-js, store in <dir>/js-<port>); default true. */
	jetstream?: boolean;
	/** More command-line arguments (a cluster's name, listen address and routes). */
	extraArgs?: string[];
	/** The server's name (-n); nats-server makes one up when unset. */
	name?: string;
}

function accepts(port: number): Promise<boolean> {
	return new Promise((resolve) => {
		const socket = net.connect(port, "127.0.0.1");
		socket.once("connect", () => {
			socket.destroy();
			resolve(true);
		});
		socket.once("error", () => resolve(false));
	});
}

export class NatsServer {
	readonly logFile: string;
	/** Where JetStream keeps its streams, or null when this server runs without JetStream. */
	readonly storeDir: string | null;
	private child: ChildProcess | null = null;

	constructor(
		readonly port: number,
		dir: string,
		private readonly auth?: NatsAuth,
		private readonly options: NatsServerOptions = {},
	) {
		this.logFile = path.join(dir, `nats-server-${port}.log`);
		this.storeDir = options.jetstream === false ? null : path.join(dir, `js-${port}`);
	}

	/** A TRANSPORTER for this server; user and password percent-encoded, as a URL needs. */
	url(user?: string, password?: string, scheme = "nats"): string {
		const credentials = user === undefined ? "" : `${encodeURIComponent(user)}${password === undefined ? "" : `:${encodeURIComponent(password)}`}@`;
		return `${scheme}://${credentials}127.0.0.1:${this.port}`;
	}

	async start(): Promise<void> {
		const log = fs.openSync(this.logFile, "a");
		const auth = !this.auth ? [] : "token" in this.auth ? ["--auth", this.auth.token] : ["--user", this.auth.user, "--pass", this.auth.password];
		const jetstream = this.storeDir === null ? [] : ["-js", "-sd", this.storeDir];
		const name = this.options.name === undefined ? [] : ["-n", this.options.name];
		const args = ["-a", "127.0.0.1", "-p", String(this.port), ...name, ...jetstream, ...auth, ...(this.options.extraArgs ?? [])];
		this.child = spawn(NATS_SERVER, args, { stdio: ["ignore", log, log] });
		fs.closeSync(log);
		const child = this.child;
		let failed: string | null = null;
		child.once("error", (err) => (failed = `${NATS_SERVER} could not start (${err.message}); set TEST_NATS_SERVER to its path`));
		child.once("exit", () => (failed ??= `nats-server exited: ${fs.readFileSync(this.logFile, "utf8")}`));
		await waitFor(() => (failed ? Promise.reject(new Error(failed)) : accepts(this.port)), {
			timeoutMs: 10_000,
			message: `nats-server on 127.0.0.1:${this.port}`,
		});
	}

	/** SIGTERM (a clean shutdown) or SIGKILL (a crash); resolves when the process is gone. */
	async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
		const child = this.child;
		if (!child || child.exitCode !== null || child.signalCode !== null) return;
		const exited = new Promise((resolve) => child.once("exit", resolve));
		child.kill(signal);
		const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
		await exited;
		clearTimeout(timer);
		this.child = null;
	}
}
