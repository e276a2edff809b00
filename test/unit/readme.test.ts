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
	it("documents every configuration variable with its default", () => {
		for (const v of VARIABLES) {
			const row = readme.split("\n").find((line) => line.startsWith(`| \`${v.name}\` |`));
			assert.ok(row, `${v.name} has a row in the configuration table`);
			assert.ok(row.includes(`| ${v.default} |`), `${v.name}'s row gives the default ${v.default}`);
		}
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
