/**
 * The JetStream stream that holds a namespace's journals: `KEYHIVE_<namespace>`,
 * one subject `keyhive.<namespace>.journal.<instance>` per node instance.
 */
import type { JetStreamManager, NatsError } from "nats";
import { RetentionPolicy, StorageType } from "nats";

/** The journal cannot be opened: one line that names the cause, for the node's start to stop with. */
export class JournalStartError extends Error {
	constructor(reason: string) {
		super(`keyhive: the journal cannot open: ${reason}`);
		this.name = "JournalStartError";
		// A deployment mistake, not a bug: logged as its one line, without a stack.
		this.stack = `${this.name}: ${this.message}`;
	}
}

export interface StreamNames {
	stream: string;
	/** Every instance's subject is this, a dot, and the instance id. */
	subjectPrefix: string;
}

/** NAMESPACE may hold '.', which neither a stream name nor a subject token may: such a namespace is spelled in hex. */
export function streamNames(namespace: string): StreamNames {
	const token = namespace === "" ? "default" : /^[A-Za-z0-9_-]+$/.test(namespace) ? namespace : `x${Buffer.from(namespace).toString("hex")}`;
	return { stream: `KEYHIVE_${token}`, subjectPrefix: `keyhive.${token}.journal` };
}

/** Creates the stream, or checks the one there; retries until deadline while JetStream has no leader yet. */
export async function ensureStream(jsm: JetStreamManager, stream: string, subjects: string, replicas: number, deadline: number): Promise<void> {
	for (;;) {
		try {
			const info = await jsm.streams.info(stream).catch((err: NatsError) => {
				if (err.api_error?.err_code === 10059) return null;
				throw err;
			});
			if (info === null) {
				await jsm.streams.add({
					name: stream,
					subjects: [subjects],
					storage: StorageType.File,
					retention: RetentionPolicy.Limits,
					num_replicas: replicas,
					duplicate_window: 120_000_000_000,
					allow_direct: false,
				});
			} else if (info.config.num_replicas !== replicas) {
				throw new JournalStartError(
					`stream ${stream} has ${info.config.num_replicas} replicas, KEYHIVE_REPLICAS says ${replicas}; set it to ${info.config.num_replicas} or change the stream's replicas`,
				);
			}
			return;
		} catch (err) {
			if (err instanceof JournalStartError) throw err;
			const api = (err as NatsError).api_error;
			// 10074 / "insufficient resources": more replicas than servers with JetStream.
			if (api && (api.err_code === 10074 || api.err_code === 10023)) {
				throw new JournalStartError(
					`JetStream cannot create stream ${stream} with ${replicas} replicas (${api.description}); run as many JetStream servers or lower KEYHIVE_REPLICAS`,
				);
			}
			if (performance.now() > deadline) {
				throw new JournalStartError(`JetStream did not answer for stream ${stream} (${(err as Error).message})`);
			}
			await new Promise((resolve) => setTimeout(resolve, 500));
		}
	}
}
