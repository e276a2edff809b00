/**
 * NATS connection options from TRANSPORTER: one URL, or the comma-separated URLs of
 * one NATS cluster (lib/config.ts has checked that they share scheme and credentials).
 * Given a `url`, Moleculer's NATS transporter passes user and password still
 * percent-encoded, sends a lone token@ as a user name and drops the tls:// scheme
 * (so TLS would not be required); these options say what the URL means.
 */
import { redactUrl } from "./config";

export interface NatsOptions {
	/** host:port of every server, in TRANSPORTER's order (nats.js picks among them and fails over). */
	servers: string[];
	user?: string;
	pass?: string;
	token?: string;
	tls?: Record<string, never>;
}

export function natsOptions(transporter: string): NatsOptions {
	const urls = transporter.split(",").map((part) => new URL(part.trim()));
	const [url] = urls;
	const user = decodeURIComponent(url.username);
	const pass = decodeURIComponent(url.password);
	return {
		servers: urls.map((u) => `${u.hostname}:${u.port || "4222"}`),
		...(pass !== "" ? { user, pass } : user !== "" ? { token: user } : {}),
		// tls:// requires TLS: nats.js then refuses a server that does not offer it.
		...(url.protocol === "tls:" ? { tls: {} } : {}),
	};
}

/** NATS refused the credentials: trying again with the same ones cannot help. */
export function isNatsAuthError(err: unknown): boolean {
	const code = (err as { code?: unknown } | null)?.code;
	return code === "AUTHORIZATION_VIOLATION" || code === "AUTHENTICATION_EXPIRED" || code === "AUTHENTICATION_TIMEOUT";
}

export function natsAuthMessage(transporter: string, err: unknown): string {
	const reason = (err as { message?: string } | null)?.message ?? String(err);
	return `keyhive: NATS at ${redactUrl(transporter)} refused the credentials in TRANSPORTER (${reason}); give the right user:password@ or token@ and start the node again`;
}
