/**
 * What the per-service contracts share (apart from index.ts, which imports
 * them, so no import goes round in a cycle).
 */

/** The params of an action that takes none. */
export type NoParams = Record<string, never>;
