/**
 * How the REPL words what went wrong: a failed call, bad input or anything
 * else comes out as one line "<command>: <why>", never as a stack trace.
 */
import { UsageError } from "./format";
import type { Print, ProgressLine } from "./print";

/** A failed call, already worded for the user. */
export class ReplError extends Error {
	constructor(
		message: string,
		readonly code: "unreachable" | "timeout" | "invalid" | "failed",
	) {
		super(message);
		this.name = "ReplError";
	}
}

interface MoleculerLikeError {
	type?: string;
	message?: string;
	data?: unknown;
}

/** One line for a failed call of action (on nodeID, when given). */
export function describeCallError(err: unknown, action: string, nodeID?: string): ReplError {
	const e = (err ?? {}) as MoleculerLikeError;
	const where = nodeID ? ` on ${nodeID}` : "";
	const service = action.split(".")[0];
	switch (e.type) {
		case "SERVICE_NOT_FOUND":
		case "SERVICE_NOT_AVAILABLE":
			return new ReplError(
				nodeID
					? `${action} is not reachable on ${nodeID}: that node runs no ${service} service (or has left)`
					: `${action} is not reachable: no available node runs the ${service} service`,
				"unreachable",
			);
		case "REQUEST_TIMEOUT":
			return new ReplError(`${action} timed out${where}`, "timeout");
		case "VALIDATION_ERROR": {
			const details = Array.isArray(e.data)
				? e.data
						.map((d: { message?: string }) => d.message)
						.filter(Boolean)
						.join("; ")
				: "";
			return new ReplError(`${action} refused the parameters${details ? `: ${details}` : ""}`, "invalid");
		}
		default:
			return new ReplError(`${action} failed${where}: ${e.message ?? String(err)}`, "failed");
	}
}

/** Runs a command body; anything it throws becomes one line "<command>: <why>". */
export async function guarded(name: string, print: Print, body: () => Promise<void>, progress?: () => ProgressLine | null): Promise<void> {
	try {
		await body();
	} catch (err) {
		progress?.()?.abandon();
		const message = err instanceof UsageError || err instanceof ReplError ? err.message : `unexpected error: ${(err as Error)?.message ?? String(err)}`;
		print(`${name}: ${message}`);
	}
}
