import { rmSync } from 'node:fs';
import kitTeardown from '../../src/testing/jest-global-teardown';
import { removeCliBuild } from './cli-build';

/**
 * The kit's teardown (stops an embedded server), then what global-setup.ts made for the run: its
 * folder and the compiled CLI.
 */
export default async function globalTeardown(): Promise<void> {
  await kitTeardown();
  const runDir = process.env.PIXCRAWLER_TEST_RUN_DIR;
  if (runDir) rmSync(runDir, { recursive: true, force: true });
  removeCliBuild();
}
