/**
 * A 3-server NATS cluster with JetStream on loopback, a test's own (never the
 * server on 4222 that other tests use): one store directory per server, routes
 * between all three (a server ignores its route to itself), as in DESIGN.md.
 * Single servers can be stopped (SIGTERM) or killed (SIGKILL) and started
 * again with their store, like a crash and a restart.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { connect, type NatsConnection } from "nats";
import { NatsServer } from "./nats-server";
import { waitFor } from "./wait";

/** How long a cluster may take to elect its JetStream meta leader and answer through every server. */
const READY_TIMEOUT_MS = 20_000;

export class NatsCluster {
	readonly dir: string;
	readonly servers: NatsServer[];
	private readonly ownsDir: boolean;

	/**
	 * @param ports client ports, one per server (e.g. [14231, 14232, 14233])
	 * @param clusterPorts route ports, in the same order (e.g. [16231, 16232, 16233])
	 * @param dir where logs and JetStream stores go; by default a fresh temp dir that cleanup() removes
	 */
	constructor(
		readonly ports: number[],
		readonly clusterPorts: number[],
		dir?: string,
	) {
		if (ports.length !== clusterPorts.length || ports.length === 0) throw new Error("NatsCluster: one cluster port per client port");
		this.ownsDir = dir === undefined;
		this.dir = dir ?? fs.mkdtempSync(path.join(os.tmpdir(), "keyhive-nats-cluster-"));
		fs.mkdirSync(this.dir, { recursive: true });
		const routes = clusterPorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
		this.servers = ports.map(
			(port, i) =>
				new NatsServer(port, this.dir, undefined, {
					name: `nats-${port}`,
					extraArgs: ["--cluster_name", "keyhive", "--cluster", `nats://127.0.0.1:${clusterPorts[i]}`, "--routes", routes],
				}),
		);
	}

	/** The TRANSPORTER of this cluster: every server's URL, comma-separated. */
	url(): string {
		return this.ports.map((port) => `nats://127.0.0.1:${port}`).join(",");
	}

	/**
	 * Without an index, starts every server; with one, starts that server again (same store).
	 * Resolves once JetStream answers through each server started.
	 */
	async start(i?: number): Promise<void> {
		const which = i === undefined ? this.servers.map((_s, n) => n) : [i];
		await Promise.all(which.map((n) => this.servers[n].start()));
		await Promise.all(which.map((n) => this.jetStreamReady(n)));
	}

	/** Stops server i: SIGTERM is a clean shutdown, SIGKILL a crash. */
	stop(i: number, signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
		return this.servers[i].stop(signal);
	}

	async stopAll(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
		await Promise.all(this.servers.map((server) => server.stop(signal)));
	}

	/** Stops every server and removes the directory if this cluster made it (else only what it put there). */
	async cleanup(): Promise<void> {
		await this.stopAll("SIGKILL");
		if (this.ownsDir) {
			fs.rmSync(this.dir, { recursive: true, force: true });
			return;
		}
		for (const server of this.servers) {
			if (server.storeDir) fs.rmSync(server.storeDir, { recursive: true, force: true });
			fs.rmSync(server.logFile, { force: true });
		}
	}

	/** Every server's log, for a failure message. */
	logs(): string {
		return this.servers.map((s) => `--- ${s.logFile}\n${fs.existsSync(s.logFile) ? fs.readFileSync(s.logFile, "utf8") : "(none)"}`).join("\n");
	}

	/** Retries until a client connected to server i alone gets the JetStream account info (a meta leader is elected). */
	private async jetStreamReady(i: number): Promise<void> {
		await waitFor(
			async () => {
				let nc: NatsConnection | undefined;
				try {
					nc = await connect({ servers: [`127.0.0.1:${this.ports[i]}`], timeout: 2000, reconnect: false, ignoreClusterUpdates: true });
					const jsm = await nc.jetstreamManager({ timeout: 2000 });
					await jsm.getAccountInfo();
					return true;
				} finally {
					await nc?.close();
				}
			},
			{ timeoutMs: READY_TIMEOUT_MS, intervalMs: 250, message: `JetStream through nats-server on 127.0.0.1:${this.ports[i]}` },
		);
	}
}
