import { rmSync } from 'node:fs';
import kitTeardown from '../../src/testing/jest-global-teardown';

/** The kit's teardown (stops an embedded server), then the run's folder (global-setup.ts). */
export default async function globalTeardown(): Promise<void> {
  await kitTeardown();
  const runDir = process.env.PIXCRAWLER_TEST_RUN_DIR;
  if (runDir) rmSync(runDir, { recursive: true, force: true });
}
