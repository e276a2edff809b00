/**
 * README is part of the interface: every variable the code reads and every
 * metric it exports is documented there, and CI runs the test command it gives.
 */
import assert from "node:assert/strict";
import * as fs from "fs";
import * as path from "path";
import { describe, it } from "node:test";
import { VARIABLES } from "../../lib/config";
import { METRICS } from "../../lib/metrics";

const root = path.resolve(__dirname, "..", "..");
const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");

describe("README", () => {
	it("its configuration table is VARIABLES, row for row: every variable, its default as readConfig applies it, its meaning", () => {
		const rows = readme.split("\n").filter((line) => /^\| `[A-Z_]+` \|/.test(line));
		const expected = VARIABLES.map((v) => `| \`${v.name}\` | ${v.shown ?? v.default} | ${v.meaning} |`);
		assert.deepEqual(rows, expected);
	});

	it("lists every metric", () => {
		for (const m of METRICS) assert.ok(readme.includes(`\`${m.name.replace(/\./g, "_")}\``), `${m.name} is listed`);
	});

	it("gives the test command that CI runs", () => {
		assert.match(readme, /npm ci && npm test/);
		const ci = fs.readFileSync(path.join(root, ".ci", "run"), "utf8");
		assert.match(ci, /^npm ci\b/m);
		assert.match(ci, /^npm test$/m);
	});
});
