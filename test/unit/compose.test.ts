/**
 * The container files, checked as text against the code (no Docker needed):
 * docker-compose.yml scales, sets only variables lib/config.ts reads and points
 * them at its own services; the Dockerfile runs the `node` npm script's command
 * as a non-root PID 1 and copies every file that command needs; bin/repl starts
 * the same runner with no services.
 */
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { describe, it } from "node:test";
import { parse as parseYaml } from "yaml";
import { readConfig, VARIABLES } from "../../lib/config";
import { natsOptions } from "../../lib/nats";

const ROOT = path.resolve(__dirname, "..", "..");
const read = (file: string) => fs.readFileSync(path.join(ROOT, file), "utf8");

// ---- docker-compose.yml ----------------------------------------------------------------

type Env = Record<string, string>;

/** Compose interpolation with nothing set in the shell: ${X:-d} and ${X-d} give d, ${X} and $X give "". */
function interpolate(value: string, shell: Env = {}): string {
	return (
		value
			.replace(/\$\$/g, "\u0000")
			.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}/g, (_all, name: string, colon: string, fallback: string | undefined) => {
				const set = shell[name];
				if (fallback === undefined) return set ?? "";
				return set === undefined || (colon === ":" && set === "") ? fallback : set;
			})
			.replace(/\$([A-Za-z_][A-Za-z0-9_]*)/g, (_all, name: string) => shell[name] ?? "")
			// biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is the placeholder this function put in for "$$" above.
			.replace(/\u0000/g, "$")
	);
}

interface Service {
	image?: string;
	build?: unknown;
	container_name?: string;
	command?: string | string[];
	environment?: Record<string, unknown> | string[];
	ports?: (string | number | { target: number; published?: string | number; host_ip?: string })[];
	depends_on?: string[] | Record<string, { condition?: string }>;
	healthcheck?: { test?: string | string[] };
	stop_grace_period?: string;
	volumes?: (string | { type?: string; target?: string; source?: string })[];
}

const compose = parseYaml(read("docker-compose.yml")) as { services: Record<string, Service>; volumes?: Record<string, unknown> };
const services = compose.services ?? {};
const keyhive = services.keyhive;
/** The NATS cluster's servers, one service each. */
const NATS_SERVICES = ["nats-1", "nats-2", "nats-3"];

/** The service's environment as written (before interpolation), in map form. */
function rawEnvironment(service: Service): Env {
	const env = service.environment ?? {};
	if (Array.isArray(env)) {
		return Object.fromEntries(
			env.map((entry) => {
				const at = entry.indexOf("=");
				return at < 0 ? [entry, ""] : [entry.slice(0, at), entry.slice(at + 1)];
			}),
		);
	}
	return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null || v === undefined ? "" : String(v)]));
}

function environment(service: Service, shell: Env = {}): Env {
	return Object.fromEntries(Object.entries(rawEnvironment(service)).map(([k, v]) => [k, interpolate(v, shell)]));
}

/** The host port a `ports` entry binds, or null when the host port is left to Docker (scalable). */
function fixedHostPort(entry: string | number | { target: number; published?: string | number }): string | null {
	if (typeof entry === "number") return null;
	if (typeof entry === "object") return entry.published === undefined || entry.published === "" ? null : String(entry.published);
	const spec = entry.replace(/\/(tcp|udp|sctp)$/, "");
	// [[ip:]host:]container, where ip may be [v6]; the host part may be empty ("127.0.0.1::3030").
	const parts = spec.replace(/^\[[^\]]*\]:/, "ip:").split(":");
	if (parts.length === 1) return null;
	const host = parts.length === 2 ? parts[0] : parts[1];
	return host === "" ? null : host;
}

/** The value after a command-line flag (any of its spellings), or undefined. */
function flag(command: string[], ...names: string[]): string | undefined {
	const at = command.findIndex((w) => names.includes(w));
	return at >= 0 ? command[at + 1] : undefined;
}

function words(command: string | string[] | undefined): string[] {
	if (command === undefined) return [];
	return Array.isArray(command) ? command.map(String) : shellWords(command);
}

function healthcheckText(service: Service): string {
	const test = service.healthcheck?.test;
	return Array.isArray(test) ? test.join(" ") : (test ?? "");
}

function durationMs(text: string): number {
	let total = 0;
	const re = /(\d+(?:\.\d+)?)(ms|us|h|m|s)/g;
	let matched = "";
	for (let m = re.exec(text); m; m = re.exec(text)) {
		matched += m[0];
		total += Number(m[1]) * { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 }[m[2] as "h" | "m" | "s" | "ms" | "us"];
	}
	assert.equal(matched, text, `duration ${text} is not in compose's 1m30s form`);
	return total;
}

/** Names of the variables lib/config.ts documents and reads. */
const KNOWN = new Set(VARIABLES.map((v) => v.name));
/** Node's own variables, which a deployment may legitimately set. */
const NODE_VARIABLES = new Set(["NODE_ENV", "NODE_OPTIONS", "NODE_EXTRA_CA_CERTS", "TZ"]);

describe("docker-compose.yml", () => {
	it("has a 3-server NATS cluster, rabbitmq and keyhive", () => {
		for (const name of [...NATS_SERVICES, "rabbitmq", "keyhive"]) assert.ok(services[name], `service ${name} is missing`);
		assert.equal(services.nats, undefined, "the single nats service gave way to nats-1..3");
	});

	it("the NATS servers form one cluster, each with JetStream in a named volume of its own", () => {
		const clusterPorts = new Map<string, string>();
		const names = new Set<string>();
		const volumes = new Set<string>();
		for (const name of NATS_SERVICES) {
			const command = words(services[name].command);
			assert.ok(command.includes("-js") || command.includes("--jetstream"), `${name} runs JetStream (-js)`);
			const serverName = flag(command, "-n", "--name", "--server_name");
			assert.ok(serverName, `${name} has a server name (-n): JetStream clustering needs a stable one`);
			names.add(serverName);
			assert.equal(flag(command, "--cluster_name"), "keyhive", `${name} is in cluster keyhive`);
			const listen = new URL(flag(command, "--cluster") ?? "");
			assert.equal(listen.hostname, "0.0.0.0", `${name} takes routes on every interface of its container`);
			clusterPorts.set(name, listen.port || "6222");
			// JetStream's store is on a named volume of its own: a container of its own survives `down`, a shared one would mix stores.
			const storeDir = flag(command, "-sd", "--store_dir");
			assert.ok(storeDir, `${name} sets its JetStream store dir (-sd): the image's default is /tmp`);
			const mounts = (services[name].volumes ?? []).map((v) => (typeof v === "string" ? v.split(":") : [v.source ?? "", v.target ?? ""]));
			const mount = mounts.find(([source, target]) => source !== "" && target !== undefined && (storeDir === target || storeDir.startsWith(`${target}/`)));
			assert.ok(mount, `${name}'s store ${storeDir} is on a named volume: ${JSON.stringify(services[name].volumes)}`);
			assert.ok(compose.volumes && mount[0] in compose.volumes, `volume ${mount[0]} is declared under volumes:`);
			volumes.add(mount[0]);
		}
		assert.equal(names.size, NATS_SERVICES.length, "server names differ");
		assert.equal(volumes.size, NATS_SERVICES.length, "each server has its own volume");
		for (const name of NATS_SERVICES) {
			const routes = (flag(words(services[name].command), "--routes") ?? "").split(",").map((r) => new URL(r));
			assert.deepEqual(
				routes.map((r) => `${r.hostname}:${r.port}`).sort(),
				NATS_SERVICES.map((n) => `${n}:${clusterPorts.get(n)}`).sort(),
				`${name} routes to every server of the cluster on its cluster port`,
			);
		}
	});

	it("only nats-1 publishes NATS on the host, on loopback", () => {
		const published = (services["nats-1"].ports ?? []).map(String);
		assert.ok(published.includes("127.0.0.1:4222:4222"), `nats-1 publishes 4222 on loopback: ${published.join(", ")}`);
		for (const entry of published) assert.match(entry, /^127\.0\.0\.1:/, `${entry} is loopback only`);
		for (const name of NATS_SERVICES.slice(1)) assert.deepEqual(services[name].ports ?? [], [], `${name} publishes no port`);
	});

	it("keyhive scales: built here, no container_name, no NODEID, no fixed host port", () => {
		assert.ok(keyhive.build, "keyhive is built from the Dockerfile (build: .)");
		assert.equal(keyhive.container_name, undefined, "a container_name allows only one replica");
		assert.ok(!("NODEID" in rawEnvironment(keyhive)), "a fixed NODEID would give every replica the same identity");
		for (const entry of keyhive.ports ?? []) {
			assert.equal(fixedHostPort(entry), null, `port ${JSON.stringify(entry)} binds a fixed host port: a second replica could not start`);
		}
	});

	it("keyhive sets only variables that lib/config.ts reads", () => {
		const names = Object.keys(rawEnvironment(keyhive));
		assert.ok(names.length > 0);
		for (const name of names) {
			if (NODE_VARIABLES.has(name)) continue;
			assert.ok(KNOWN.has(name), `${name} is set in docker-compose.yml but lib/config.ts does not read it (VARIABLES)`);
		}
	});

	it("keyhive's settings, with their defaults, are a valid configuration", () => {
		const env = environment(keyhive);
		const config = readConfig(env);
		assert.equal(config.consensus, 1);
		assert.equal(config.actors, 1_000_000);
		assert.ok(config.metricsPort > 0, "metrics are on (the healthcheck reads them)");
		assert.equal(rawEnvironment(keyhive).KEYHIVE_CONSENSUS, "${KEYHIVE_CONSENSUS:-1}", "KEYHIVE_CONSENSUS is overridable from the shell");
		assert.equal(rawEnvironment(keyhive).KEYHIVE_ACTORS, "${KEYHIVE_ACTORS:-1000000}", "KEYHIVE_ACTORS is overridable from the shell");
		assert.equal(readConfig(environment(keyhive, { KEYHIVE_CONSENSUS: "2", KEYHIVE_ACTORS: "5000" })).consensus, 2);
	});

	it("TRANSPORTER lists every NATS server on the port it listens on", () => {
		const transporter = readConfig(environment(keyhive)).transporter!;
		const urls = transporter.split(",").map((u) => new URL(u));
		assert.deepEqual(
			urls.map((u) => u.hostname),
			NATS_SERVICES,
		);
		for (const url of urls) {
			assert.equal(url.protocol, "nats:");
			const natsPort = flag(words(services[url.hostname].command), "-p", "--port") ?? "4222";
			assert.equal(url.port || "4222", natsPort, `${url.hostname} listens on ${natsPort}`);
		}
		assert.deepEqual(
			natsOptions(transporter).servers,
			NATS_SERVICES.map((n) => `${n}:4222`),
		);
	});

	it("the journal stream has 3 replicas, one per NATS server, overridable from the shell", () => {
		assert.equal(rawEnvironment(keyhive).KEYHIVE_REPLICAS, "${KEYHIVE_REPLICAS:-3}");
		const replicas = readConfig(environment(keyhive)).replicas;
		assert.equal(replicas, 3);
		assert.ok(replicas <= NATS_SERVICES.length, "JetStream places each replica on a different server");
		assert.equal(readConfig(environment(keyhive, { KEYHIVE_REPLICAS: "1" })).replicas, 1);
	});

	it("AMQP_URL points at the rabbitmq service, with the user it creates", () => {
		const url = new URL(environment(keyhive).AMQP_URL);
		assert.equal(url.protocol, "amqp:");
		assert.equal(url.hostname, "rabbitmq");
		assert.equal(url.port || "5672", "5672");
		const rabbit = environment(services.rabbitmq);
		assert.equal(decodeURIComponent(url.username), rabbit.RABBITMQ_DEFAULT_USER ?? "guest");
		assert.equal(decodeURIComponent(url.password), rabbit.RABBITMQ_DEFAULT_PASS ?? "guest");
		// The same shell setting changes both sides.
		const shell = { RABBITMQ_USER: "keyhive", RABBITMQ_PASSWORD: "s3cret" };
		const custom = new URL(environment(keyhive, shell).AMQP_URL);
		assert.equal(custom.username, environment(services.rabbitmq, shell).RABBITMQ_DEFAULT_USER ?? "guest");
		assert.equal(custom.password, environment(services.rabbitmq, shell).RABBITMQ_DEFAULT_PASS ?? "guest");
	});

	it("keyhive starts only when every NATS server and rabbitmq are healthy, and each has a healthcheck that works in its image", () => {
		const deps = keyhive.depends_on;
		assert.ok(deps && !Array.isArray(deps), "depends_on needs the long form to carry a condition");
		for (const name of [...NATS_SERVICES, "rabbitmq"]) {
			assert.equal(deps[name]?.condition, "service_healthy", `keyhive waits for ${name} to be healthy`);
			assert.ok(healthcheckText(services[name]) !== "", `${name} has a healthcheck`);
		}
		for (const name of NATS_SERVICES) {
			const nats = healthcheckText(services[name]);
			if (/\bwget\b|\bcurl\b/.test(nats)) {
				assert.match(services[name].image ?? "", /alpine/, `${name}: the plain nats image is FROM scratch, no wget or curl in it`);
			}
			const monitor = flag(words(services[name].command), "-m", "--http_port");
			assert.ok(monitor, `${name}'s monitoring port is on (-m)`);
			assert.match(nats, new RegExp(`:${monitor}/healthz`), `${name}'s healthcheck asks its monitoring port`);
		}
		assert.match(healthcheckText(services.rabbitmq), /rabbitmq-diagnostics.*ping/);
	});

	it("keyhive's healthcheck asks the metrics port that KEYHIVE_METRICS_PORT opens", () => {
		const port = environment(keyhive).KEYHIVE_METRICS_PORT;
		const test = healthcheckText(keyhive);
		const url = /https?:\/\/[^'"\s)]+/.exec(test)?.[0];
		assert.ok(url, `a URL in the healthcheck: ${test}`);
		const parsed = new URL(url);
		assert.ok(["127.0.0.1", "localhost"].includes(parsed.hostname), "the container asks itself");
		assert.equal(parsed.port, port);
		assert.equal(parsed.pathname, "/metrics");
		assert.match(test, /^CMD node /, "node is the only HTTP client in the node image (no curl, no wget)");
		assert.match(test, /moleculer_transit_connected/, "healthy only while connected to NATS: a refused or cut-off node still serves its metrics");
	});

	it("a graceful leave fits in stop_grace_period", () => {
		const leave = Number(VARIABLES.find((v) => v.name === "KEYHIVE_LEAVE_TIMEOUT_MS")!.default);
		const configured = Number(environment(keyhive).KEYHIVE_LEAVE_TIMEOUT_MS ?? leave);
		assert.ok(keyhive.stop_grace_period, "without it Docker kills the node after 10 s, mid-handoff");
		assert.ok(
			durationMs(keyhive.stop_grace_period!) > configured,
			`stop_grace_period ${keyhive.stop_grace_period} exceeds the leave timeout (${configured} ms)`,
		);
	});

	it("each replica keeps its store in its own volume at KEYHIVE_DATA_DIR", () => {
		const dataDir = environment(keyhive).KEYHIVE_DATA_DIR ?? dockerfileEnv().KEYHIVE_DATA_DIR;
		assert.equal(dataDir, "/data");
		const targets = (keyhive.volumes ?? []).map((v) => (typeof v === "string" ? v : `${v.source ? `${v.source}:` : ""}${v.target}`));
		assert.ok(targets.includes(dataDir), `an anonymous volume at ${dataDir} (a named one would be shared by all replicas): ${targets.join(", ")}`);
	});
});

// ---- Dockerfile -----------------------------------------------------------------------------

interface Instruction {
	keyword: string;
	args: string;
}

/** Instructions in order, comments dropped and continuation lines joined. */
function dockerfile(): Instruction[] {
	const lines = read("Dockerfile").split("\n");
	const out: Instruction[] = [];
	let current = "";
	for (const line of lines) {
		if (/^\s*#/.test(line) && current === "") continue;
		if (/^\s*#/.test(line)) continue; // a comment inside a continued instruction
		const trimmed = line.replace(/\s+$/, "");
		if (trimmed.endsWith("\\")) {
			current += `${trimmed.slice(0, -1)} `;
			continue;
		}
		current += trimmed;
		if (current.trim() !== "") {
			const m = /^\s*([A-Za-z]+)\s+([\s\S]*)$/.exec(current);
			assert.ok(m, `not an instruction: ${current}`);
			out.push({ keyword: m[1].toUpperCase(), args: m[2].trim() });
		}
		current = "";
	}
	return out;
}

/** Instructions split at each FROM; stage 0 is the first FROM. */
function stages(): Instruction[][] {
	const result: Instruction[][] = [];
	for (const instruction of dockerfile()) {
		if (instruction.keyword === "FROM") result.push([]);
		assert.ok(result.length > 0, `${instruction.keyword} before the first FROM`);
		result[result.length - 1].push(instruction);
	}
	return result;
}

function finalStage(): Instruction[] {
	const all = stages();
	return all[all.length - 1];
}

/** ENV of the final stage, both `ENV a=b c=d` and `ENV a b` forms. */
function dockerfileEnv(): Env {
	const env: Env = {};
	for (const { keyword, args } of finalStage()) {
		if (keyword !== "ENV") continue;
		if (!args.includes("=")) {
			const [name, ...rest] = args.split(/\s+/);
			env[name] = rest.join(" ");
			continue;
		}
		for (const word of shellWords(args)) {
			const at = word.indexOf("=");
			env[word.slice(0, at)] = word.slice(at + 1);
		}
	}
	return env;
}

/** Splits a command line the way sh would for plain words and quoted strings (no expansion). */
function shellWords(line: string): string[] {
	const result: string[] = [];
	const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
	for (let m = re.exec(line); m; m = re.exec(line)) result.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, "$1") : (m[2] ?? m[3]));
	return result;
}

/** Where the final stage's COPY instructions put things, as sources relative to the build context. */
function copiedSources(): { fromContext: string[]; fromStages: string[] } {
	const fromContext: string[] = [];
	const fromStages: string[] = [];
	for (const { keyword, args } of finalStage()) {
		if (keyword !== "COPY" && keyword !== "ADD") continue;
		const parts = args.startsWith("[") ? (JSON.parse(args.replace(/^(--\S+\s+)*/, "")) as string[]) : shellWords(args);
		const flags = parts.filter((p) => p.startsWith("--"));
		const paths = parts.filter((p) => !p.startsWith("--"));
		const sources = paths.slice(0, -1).map((s) => s.replace(/^\.\//, "").replace(/\/$/, ""));
		(flags.some((f) => f.startsWith("--from=")) ? fromStages : fromContext).push(...sources);
	}
	return { fromContext, fromStages };
}

/** Project files reachable through relative imports from the entry files (.ts, index.ts, .json). */
function importClosure(entries: string[]): Set<string> {
	const seen = new Set<string>();
	const queue = [...entries];
	while (queue.length > 0) {
		const file = queue.pop()!;
		if (seen.has(file)) continue;
		seen.add(file);
		if (!file.endsWith(".ts")) continue;
		const source = read(file);
		const re = /(?:from\s+|require\(\s*|import\(\s*|import\s+)["'](\.{1,2}\/[^"']+)["']/g;
		for (let m = re.exec(source); m; m = re.exec(source)) {
			const base = path.join(path.dirname(file), m[1]);
			const candidates = [base, `${base}.ts`, path.join(base, "index.ts")];
			const found = candidates.find((c) => fs.existsSync(path.join(ROOT, c)) && fs.statSync(path.join(ROOT, c)).isFile());
			assert.ok(found, `${file} imports ${m[1]}, which does not exist`);
			queue.push(found);
		}
	}
	return seen;
}

const nodeScript = (JSON.parse(read("package.json")) as { scripts: Record<string, string> }).scripts.node;

describe("Dockerfile", () => {
	it("is multi-stage on node 22 or 24", () => {
		const froms = dockerfile().filter((i) => i.keyword === "FROM");
		assert.ok(froms.length >= 2, "a build stage with the compiler and a runtime stage without it");
		for (const from of froms) assert.match(from.args, /^(--platform=\S+\s+)?node:(22|24)([.-]\S*)?(\s+AS\s+\S+)?$/i, `FROM ${from.args}`);
	});

	it("compiles better-sqlite3 in the build stage with npm ci --omit=dev from the lockfile", () => {
		const build = stages()[0];
		const runs = build
			.filter((i) => i.keyword === "RUN")
			.map((i) => i.args)
			.join("\n");
		for (const tool of ["python3", "make", "g++"]) assert.ok(shellWords(runs).includes(tool), `the build stage installs ${tool}`);
		assert.match(runs, /npm ci --omit=dev/);
		const copied = build.filter((i) => i.keyword === "COPY").flatMap((i) => shellWords(i.args));
		assert.ok(
			copied.some((w) => /^package(-lock\.json|\*\.json)$/.test(w)),
			"the lockfile is copied before npm ci",
		);
		const final = finalStage()
			.filter((i) => i.keyword === "RUN")
			.map((i) => i.args)
			.join("\n");
		assert.doesNotMatch(final, /g\+\+|build-essential/, "no compiler in the runtime image");
	});

	it("runs as the non-root node user in the final stage", () => {
		const users = finalStage().filter((i) => i.keyword === "USER");
		assert.ok(users.length > 0, "USER in the final stage");
		assert.equal(users[users.length - 1].args.split(":")[0], "node");
	});

	it("sets production, the data directory and the metrics port, and exposes that port", () => {
		const env = dockerfileEnv();
		assert.equal(env.NODE_ENV, "production");
		assert.equal(env.KEYHIVE_DATA_DIR, "/data");
		const exposed = finalStage()
			.filter((i) => i.keyword === "EXPOSE")
			.flatMap((i) => i.args.split(/\s+/))
			.map((p) => p.replace(/\/tcp$/, ""));
		const metricsPort = environment(keyhive).KEYHIVE_METRICS_PORT ?? env.KEYHIVE_METRICS_PORT;
		assert.ok(exposed.includes(metricsPort), `EXPOSE ${metricsPort} (metrics): ${exposed.join(" ")}`);
		for (const name of Object.keys(env)) if (!NODE_VARIABLES.has(name)) assert.ok(KNOWN.has(name), `ENV ${name} is not read by lib/config.ts`);
		assert.ok(!("NODEID" in env), "NODEID defaults to the hostname, which differs per replica");
	});

	it("CMD is the `node` npm script's command, in exec form, and stops on SIGTERM", () => {
		const cmds = finalStage().filter((i) => i.keyword === "CMD");
		assert.equal(cmds.length, 1);
		assert.ok(cmds[0].args.startsWith("["), "exec form: node is PID 1 and receives SIGTERM (npm would not forward it)");
		assert.deepEqual(JSON.parse(cmds[0].args), shellWords(nodeScript));
		assert.ok(!dockerfile().some((i) => i.keyword === "ENTRYPOINT"), "no ENTRYPOINT wraps the CMD");
		const stop = finalStage().filter((i) => i.keyword === "STOPSIGNAL");
		assert.equal(stop[stop.length - 1]?.args, "SIGTERM");
	});

	it("copies every file the CMD and moleculer.config.ts need", () => {
		const { fromContext, fromStages } = copiedSources();
		assert.ok(
			fromStages.some((s) => s === "/app/node_modules" || s.endsWith("node_modules")),
			"node_modules from the build stage",
		);
		const topLevel = (file: string) => file.split(/[\\/]/)[0];
		const cmd = shellWords(nodeScript);
		const config = cmd[cmd.indexOf("--config") + 1];
		const serviceGlob = cmd[cmd.length - 1];
		const serviceFiles = fs.readdirSync(path.join(ROOT, path.dirname(serviceGlob))).filter((f) => f.endsWith(".service.ts"));
		assert.ok(serviceFiles.length > 0);
		const needed = new Set<string>(["package.json", "tsconfig.json", "types", "bin"]);
		for (const file of importClosure([config, ...serviceFiles.map((f) => path.join(path.dirname(serviceGlob), f))])) needed.add(topLevel(file));
		for (const file of needed) assert.ok(fromContext.includes(file), `${file} is needed at run time but not copied (COPY ${fromContext.join(", ")})`);
	});

	it(".dockerignore keeps node_modules, data, tests and history out, and nothing the image copies", () => {
		const ignored = read(".dockerignore")
			.split("\n")
			.map((l) => l.trim())
			.filter((l) => l !== "" && !l.startsWith("#"));
		for (const pattern of ["node_modules", "data", ".git", "test", "bench", "*.sqlite*"]) assert.ok(ignored.includes(pattern), `.dockerignore: ${pattern}`);
		for (const copied of copiedSources().fromContext) assert.ok(!ignored.includes(copied), `${copied} is copied but ignored`);
	});
});

// ---- bin/repl ------------------------------------------------------------------------------------

describe("bin/repl", () => {
	const script = read("bin/repl");

	it("is an executable bash script", () => {
		assert.match(script, /^#!\/usr\/bin\/env bash\n/);
		assert.ok((fs.statSync(path.join(ROOT, "bin/repl")).mode & 0o111) !== 0, "chmod +x bin/repl");
	});

	it("execs the node script's runner with --repl and without any service", () => {
		const line = script.split("\n").find((l) => /^exec node /.test(l));
		assert.ok(line, "exec node … (signals reach the node)");
		const expected = shellWords(nodeScript).filter((w) => !w.includes("service"));
		assert.deepEqual(shellWords(line.slice("exec ".length)), [...expected, "--repl"]);
		assert.match(script, /unset SERVICES SERVICEDIR/, "moleculer-runner would load services named in these");
	});

	it("never takes a keyhive node's identity or its metrics port", () => {
		assert.match(script, /export NODEID="\$\{REPL_NODEID:-repl-/);
		assert.match(script, /export KEYHIVE_METRICS_PORT=0/);
	});
});
