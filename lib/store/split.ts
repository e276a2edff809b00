/**
 * A shipment cut into parts that each fit one message of the transporter or
 * one record of the journal.
 */
import { emptyShipment, type Shipment } from "./store";

/**
 * Splits a shipment into parts of at most maxRows items and about maxBytes,
 * so no call exceeds the transporter's packet limit. Actor records and
 * processed ids go first (the receiver needs them before it may start the
 * keys, which it does only after the whole handoff); messages keep their
 * (key, stamp) order across parts; dead letters and results come last.
 */
export function split(shipment: Shipment, maxRows: number, maxBytes: number): Shipment[] {
	const parts: Shipment[] = [];
	let current = emptyShipment();
	let rows = 0;
	let bytes = 0;
	const add = (size: number, put: (part: ReturnType<typeof emptyShipment>) => void) => {
		if (rows > 0 && (rows >= maxRows || bytes + size > maxBytes)) {
			parts.push(current);
			current = emptyShipment();
			rows = bytes = 0;
		}
		put(current);
		rows++;
		bytes += size;
	};
	for (const actor of shipment.actors) add(byteSize(actor.id) + byteSize(JSON.stringify(actor.payload ?? null)) + 16, (p) => p.actors.push(actor));
	for (const id of shipment.processed) add(byteSize(id.id) + byteSize(id.key) + 16, (p) => p.processed.push(id));
	for (const message of shipment.messages) {
		const size =
			byteSize(message.payload) + (message.headers ? byteSize(JSON.stringify(message.headers)) : 0) + byteSize(message.key) + byteSize(message.id) + 32;
		add(size, (p) => p.messages.push(message));
	}
	for (const dead of shipment.dead ?? []) {
		const size =
			byteSize(dead.payload) +
			(dead.headers ? byteSize(JSON.stringify(dead.headers)) : 0) +
			byteSize(dead.key) +
			byteSize(dead.id) +
			byteSize(dead.reason) +
			48;
		add(size, (p) => p.dead.push(dead));
	}
	for (const result of shipment.outbox ?? []) {
		const size = byteSize(result.body) + (result.headers ? byteSize(JSON.stringify(result.headers)) : 0) + byteSize(result.key) + byteSize(result.uid) + 16;
		add(size, (p) => p.outbox.push(result));
	}
	parts.push(current);
	return parts;
}

function byteSize(text: string): number {
	return Buffer.byteLength(text);
}
