import { maskDatabaseUrl } from '../../src/connection/database-url';
import { startTestServer, type TestServer } from '../../src/testing/test-server';

declare global {
  var __PIXCRAWLER_TEST_SERVER__: TestServer | undefined;
}

/**
 * Starts the server the test files create their databases on (DATABASE_URL's, or an embedded
 * one) and hands its URL to the workers through PIXCRAWLER_TEST_SERVER_URL: they inherit this
 * process's environment.
 */
export default async function globalSetup(): Promise<void> {
  const server = await startTestServer();
  globalThis.__PIXCRAWLER_TEST_SERVER__ = server;
  process.env.PIXCRAWLER_TEST_SERVER_URL = server.url;
  const kind = server.embedded ? 'an embedded PostgreSQL' : 'the server of DATABASE_URL';
  console.log(`\nTests use ${kind}: ${maskDatabaseUrl(server.url)}`);
}
