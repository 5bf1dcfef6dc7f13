import { Client } from 'pg';
import { maskDatabaseUrl } from '../../src/db/database-url';
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
  console.log(`\nTests use ${kind}: ${maskDatabaseUrl(server.url)} (${await version(server.url)})`);
}

/** "PostgreSQL 13.23": CI runs the suite on several versions, and its log should say which. */
async function version(url: string): Promise<string> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>(
      "SELECT current_setting('server_version') AS v",
    );
    return `PostgreSQL ${rows[0].v}`;
  } finally {
    await client.end();
  }
}
