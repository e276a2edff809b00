/** keyhive's REPL commands (moleculer-repl 0.8 customCommands). */
export const replCommands: unknown[] = [];
