/**
 * moleculer-repl's built-in `load <servicePath>` (load a service file), which
 * keyhive's `load` takes over so the name serves both jobs.
 *
 * moleculer-repl 0.8 registers the built-in, skips any custom command whose
 * name is taken (src/index.js, "already exists. Skipping..."), and commander 14
 * refuses a second command or alias of one name; there is no option to replace
 * a built-in. What the library does expose: every built-in lives in its own
 * module, src/commands/load.js, which exports `register(program, broker)`,
 * `declaration(program, broker, loadHandler, loadFolderHandler)` and both
 * handlers, and the REPL looks `register` up in that module when it starts
 * (src/commands/index.js).
 *
 * So takeOverBuiltinLoad replaces that module's `register` with one that runs
 * the library's own `declaration` but builds its `load` command detached
 * (commander's public `createCommand`), so it never reaches the program;
 * `loadFolder` is declared exactly as before. The name `load` is then free and
 * keyhive's `load [servicePath]` registers as an ordinary custom command, which
 * calls the library's own `loadHandler` for a service path, so loading a
 * service file behaves as it always did.
 *
 * This changes moleculer-repl for the whole process, so only startRepl calls it.
 */
type Program = {
	command(spec: string, ...rest: unknown[]): unknown;
	createCommand(name: string): unknown;
};
type BrokerLike = unknown;

export type BuiltinLoadHandler = (broker: BrokerLike, args: { servicePath: string; options: Record<string, unknown>; rawCommand?: string }) => Promise<void>;

interface BuiltinLoadModule {
	register(program: Program, broker: BrokerLike): void;
	declaration(program: Program, broker: BrokerLike, loadHandler: unknown, loadFolderHandler: unknown): void;
	loadHandler: BuiltinLoadHandler;
	loadFolderHandler: unknown;
}

const TAKEN = Symbol.for("keyhive.repl.builtinLoadTaken");

/** The module, or null when it does not look like moleculer-repl 0.8's (another version). */
function builtinLoadModule(): (BuiltinLoadModule & { [TAKEN]?: boolean }) | null {
	let mod: BuiltinLoadModule;
	try {
		mod = require("moleculer-repl/src/commands/load.js");
	} catch {
		return null;
	}
	if (!mod || typeof mod.declaration !== "function" || typeof mod.loadHandler !== "function" || typeof mod.loadFolderHandler !== "function") return null;
	return mod;
}

/** The built-in's handler (loads a service file), or null when the module is not the one described above. */
export function builtinLoadHandler(): BuiltinLoadHandler | null {
	return builtinLoadModule()?.loadHandler ?? null;
}

/**
 * Keeps moleculer-repl's built-in `load` from registering, so keyhive's can.
 * False when the module is not the one described above: then the built-in
 * `load` stays, and keyhive's load generator registers as `load-messages`.
 */
export function takeOverBuiltinLoad(): boolean {
	const mod = builtinLoadModule();
	if (!mod) return false;
	if (!mod[TAKEN]) {
		mod.register = (program: Program, broker: BrokerLike) => {
			const withoutLoad = Object.create(program, {
				command: {
					value: (spec: string, ...rest: unknown[]) => (/^load(\s|$)/.test(spec) ? program.createCommand("load") : program.command(spec, ...rest)),
				},
			}) as Program;
			mod.declaration(withoutLoad, broker, mod.loadHandler, mod.loadFolderHandler);
		};
		mod[TAKEN] = true;
	}
	return true;
}
