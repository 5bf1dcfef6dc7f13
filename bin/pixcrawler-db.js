#!/usr/bin/env node
// Runs the compiled CLI when the package is built (dist/), else the TypeScript sources through
// ts-node, so `npx pixcrawler-db` works both in an installed package and in a fresh clone.
const path = require('node:path');
const fs = require('node:fs');

const compiled = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
let main;
if (fs.existsSync(compiled)) {
  main = require(compiled);
} else {
  require('ts-node').register({
    transpileOnly: true,
    project: path.join(__dirname, '..', 'tsconfig.json'),
  });
  main = require(path.join(__dirname, '..', 'src', 'cli', 'main.ts'));
}
main.buildProgram().parseAsync(process.argv);
