import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';

/**
 * A compiled copy of this checkout's sources, made once per jest run, for the CLI processes the
 * tests start: bin/pixcrawler-db.js runs it when PIXCRAWLER_TEST_CLI_BUILD names it. Through ts-node
 * every CLI process compiled all of src/ again (about 4 s of CPU each, and the suite starts
 * hundreds); compiled, one starts in well under a second, and runs what an installed package
 * runs. It lives under node_modules/.cache so that its requires resolve to this checkout's
 * dependencies.
 */
const ROOT = path.resolve(__dirname, '..', '..');
export const CLI_BUILD_VARIABLE = 'PIXCRAWLER_TEST_CLI_BUILD';

export function buildCli(): string {
  const parent = path.join(ROOT, 'node_modules', '.cache', 'pixcrawler-cli');
  mkdirSync(parent, { recursive: true });
  const outDir = mkdtempSync(path.join(parent, 'build-'));
  // Emit only: `npm run typecheck` is the type check, and it runs on its own.
  const tsc = spawnSync(
    process.execPath,
    [
      path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'),
      '-p',
      path.join(ROOT, 'tsconfig.build.json'),
      '--outDir',
      outDir,
      '--noCheck',
      '--declaration',
      'false',
      '--sourceMap',
      'false',
    ],
    { encoding: 'utf8' },
  );
  if (tsc.status !== 0) {
    rmSync(outDir, { recursive: true, force: true });
    throw new Error(`Compiling the CLI for the tests failed:\n${tsc.stdout}${tsc.stderr}`);
  }
  return outDir;
}

export function removeCliBuild(): void {
  const outDir = process.env[CLI_BUILD_VARIABLE];
  if (outDir) rmSync(outDir, { recursive: true, force: true });
}
