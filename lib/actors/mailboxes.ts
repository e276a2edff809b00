/**
 * The rows dealt to actors and not yet committed: each actor's mailbox in
 * stamp order, and the seqs of every row in a mailbox or in a perform (so a
 * rescan of the store does not deal a row twice).
 */
import type { StoredMessage } from "../store/store";

export class Mailboxes<A> {
	private readonly byActor = new Map<A, StoredMessage[]>();
	private readonly dealt = new Set<number>();

	has(actor: A): boolean {
		return this.byActor.has(actor);
	}

	isDealt(seq: number): boolean {
		return this.dealt.has(seq);
	}

	/** Puts a row in the actor's mailbox by stamp (a row shipped in may be older than rows waiting). */
	add(actor: A, row: StoredMessage): void {
		let mailbox = this.byActor.get(actor);
		if (!mailbox) this.byActor.set(actor, (mailbox = []));
		insertByStamp(mailbox, row);
		this.dealt.add(row.seq);
	}

	/** Takes up to max rows from the front for a perform; they stay dealt until done(). */
	take(actor: A, max: number): StoredMessage[] {
		const mailbox = this.byActor.get(actor);
		if (!mailbox) return [];
		if (mailbox.length <= max) {
			this.byActor.delete(actor);
			return mailbox;
		}
		return mailbox.splice(0, max);
	}

	/** A perform's rows are over (committed or dropped). */
	done(rows: readonly StoredMessage[]): void {
		for (const row of rows) this.dealt.delete(row.seq);
	}

	/** Rows of a failed perform go back to the front, in their order. */
	putBack(actor: A, rows: StoredMessage[]): void {
		const mailbox = this.byActor.get(actor);
		this.byActor.set(actor, mailbox ? rows.concat(mailbox) : rows);
		for (const row of rows) this.dealt.add(row.seq);
	}

	/** Forgets the actor's mailbox; its rows stay in the store. */
	drop(actor: A): void {
		const mailbox = this.byActor.get(actor);
		if (!mailbox) return;
		this.done(mailbox);
		this.byActor.delete(actor);
	}

	clear(): void {
		this.byActor.clear();
		this.dealt.clear();
	}
}

function insertByStamp(mailbox: StoredMessage[], row: StoredMessage): void {
	let i = mailbox.length;
	while (i > 0 && mailbox[i - 1].stamp > row.stamp) i--;
	if (i === mailbox.length) mailbox.push(row);
	else mailbox.splice(i, 0, row);
}
