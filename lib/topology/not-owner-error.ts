/**
 * The error of a node asked to act on keys its view gives to another node:
 * a handoff it must refuse, or a put/del routed to it by an older view.
 */
export class NotOwnerError extends Error {
	constructor(node: string, keys: string[]) {
		super(`${node} does not own ${keys.slice(0, 3).join(", ")}${keys.length > 3 ? ` and ${keys.length - 3} more` : ""} in its view`);
		this.name = "NotOwnerError";
	}
}
