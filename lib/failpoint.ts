/**
 * Failpoints: named places where a test can make this process die at once,
 * as a crash would (SIGKILL: no cleanup, no flush). Off unless KEYHIVE_FAILPOINT
 * names the point; a timed signal from outside cannot land between two
 * statements of one synchronous turn, which is where the interesting crashes are.
 */
const armed = process.env.KEYHIVE_FAILPOINT ?? "";

export type FailpointName = "ingest.after-commit" | "ship.after-send";

export function failpoint(name: FailpointName): void {
	if (armed === name) process.kill(process.pid, "SIGKILL");
}
