/**
 * The id a result is published with (its AMQP messageId), so a reader can drop
 * a result published twice. The rule: the i-th result of a perform gets the id
 * of the perform's i-th message; results beyond the messages get the last
 * message's id with "#1", "#2", … appended. A periodic perform (no messages)
 * has no message id: its results get "<actor id>@<ms timestamp of the
 * perform>", then "#1", "#2", … Each message is committed by one perform
 * only, so no two results share an id (unless a message's own id looks like
 * "<id>#<n>" or "<id>@<n>").
 *
 * The id rides in the outbox entry's headers under RESULT_ID_HEADER (so it
 * travels with the entry); the relay publishes it as messageId and leaves the
 * header out.
 */
import type { Headers, StoredMessage } from "../store/store";
import type { OutboxEntry } from "./perform-context";

export const RESULT_ID_HEADER = "keyhive-result-id";

/** The id of result `index` (from 0) of a perform of `rows` by actor `actorId` that started at `performedAt` (ms). */
export function resultIdOf(rows: readonly Pick<StoredMessage, "id">[], index: number, actorId: string, performedAt: number): string {
	if (index < rows.length) return rows[index].id;
	const base = rows.length > 0 ? rows[rows.length - 1].id : `${actorId}@${performedAt}`;
	const extra = index - Math.max(rows.length - 1, 0);
	return extra === 0 ? base : `${base}#${extra}`;
}

/** The outbox entries with their result ids in their headers. */
export function withResultIds(outbox: readonly OutboxEntry[], rows: readonly Pick<StoredMessage, "id">[], actorId: string, performedAt: number): OutboxEntry[] {
	return outbox.map((entry, index) => {
		const headers: Headers = { ...entry.headers, [RESULT_ID_HEADER]: resultIdOf(rows, index, actorId, performedAt) };
		return { key: entry.key, body: entry.body, headers };
	});
}
