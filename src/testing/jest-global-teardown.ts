import './jest-global-setup';

/**
 * jest `globalTeardown: '@pixcrawler/data/testing/jest-global-teardown'`: stops the server
 * jest-global-setup started (an embedded one; a DATABASE_URL server is left running).
 */
export default async function globalTeardown(): Promise<void> {
  await globalThis.__PIXCRAWLER_TEST_SERVER__?.stop();
  globalThis.__PIXCRAWLER_TEST_SERVER__ = undefined;
}
