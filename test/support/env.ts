/**
 * Where the tests reach the real brokers, and names and ports no other test
 * or concurrent run uses. TEST_NATS_URL and TEST_AMQP_URL point them elsewhere.
 */
import { randomBytes } from "crypto";
import * as net from "net";

export const NATS_URL = process.env.TEST_NATS_URL ?? "nats://127.0.0.1:4222";
export const AMQP_URL = process.env.TEST_AMQP_URL ?? "amqp://guest:guest@127.0.0.1:5672";

/** `<prefix>-<8 hex digits>`: safe as a queue name, a Moleculer namespace and a nodeID (no dots, which NATS subjects split on). */
export function uniqueName(prefix: string): string {
	return `${prefix}-${randomBytes(4).toString("hex")}`;
}

/** A loopback port nothing listens on right now (bound once, then released). */
export async function freePort(): Promise<number> {
	return new Promise((resolve, reject) => {
		const server = net.createServer();
		server.once("error", reject);
		server.listen(0, "127.0.0.1", () => {
			const { port } = server.address() as net.AddressInfo;
			server.close(() => resolve(port));
		});
	});
}
