/**
 * The JetStream stream of a test's namespace (every node's journal in it),
 * deleted when the test is done so the shared server does not keep it.
 */
import { connect } from "nats";
import { streamNames } from "../../lib/durable/jetstream-stream";
import { natsOptions } from "../../lib/nats";

export async function deleteJournalStream(url: string, namespace: string): Promise<void> {
	const nc = await connect({ ...natsOptions(url), timeout: 3000 }).catch(() => null);
	if (!nc) return;
	try {
		const jsm = await nc.jetstreamManager({ timeout: 3000 });
		await jsm.streams.delete(streamNames(namespace).stream);
	} catch {
		// No JetStream, or no stream: nothing to delete.
	} finally {
		await nc.close();
	}
}
