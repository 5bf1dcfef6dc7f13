#!/usr/bin/env node
// In a checkout (TypeScript sources present) the CLI runs from src/ through ts-node, so a stale
// dist/ never runs; in an installed package, which ships only dist/, it runs the compiled code.
const path = require('node:path');
const fs = require('node:fs');

const root = path.join(__dirname, '..');
const source = path.join(root, 'src', 'cli', 'main.ts');
// A checkout's tests run a copy of src/ compiled once per test run (test/helpers/cli-build.ts);
// an installed package has no src/ and always runs its own dist/.
const testBuild = process.env.PIXCRAWLER_TEST_CLI_BUILD;
let main;
if (fs.existsSync(source) && testBuild) {
  main = require(path.join(testBuild, 'src', 'cli', 'main.js'));
} else if (fs.existsSync(source)) {
  require('ts-node').register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
  main = require(source);
} else {
  main = require(path.join(root, 'dist', 'src', 'cli', 'main.js'));
}
main.runCli(process.argv);
