/**
 * RabbitMQ facts the soak logs for post-mortems, read with rabbitmqctl
 * (loopback broker): which connection holds the inbox's single-active-consumer
 * slot right now.
 */
import { execFile } from "child_process";
import { promisify } from "util";

const run = promisify(execFile);

async function rows(args: string[]): Promise<string[][]> {
	const { stdout } = await run("rabbitmqctl", [...args, "-q", "--no-table-headers"], { timeout: 15_000 });
	return stdout
		.split("\n")
		.filter((line) => line.trim().length > 0)
		.map((line) => line.split("\t"));
}

/**
 * The connection_name of the active consumer of queue (keyhive names its
 * connections "keyhive <nodeID>"), or null when there is none.
 */
export async function activeConsumerOf(queue: string): Promise<string | null> {
	// Three CLI runs of about a second each: together, not one after the other.
	const [consumers, channels, connections] = await Promise.all([
		rows(["list_consumers", "queue_name", "channel_pid", "active"]),
		rows(["list_channels", "pid", "connection"]),
		rows(["list_connections", "pid", "client_properties"]),
	]);
	const active = consumers.find(([q, , isActive]) => q === queue && isActive === "true");
	if (!active) return null;
	const channel = channels.find(([pid]) => pid === active[1]);
	if (!channel) return null;
	const connection = connections.find(([pid]) => pid === channel[1]);
	const match = connection ? /\{"connection_name","([^"]*)"\}/.exec(connection[1]) : null;
	return match ? match[1] : null;
}
