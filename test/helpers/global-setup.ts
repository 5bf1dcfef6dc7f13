import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer } from 'node:net';
import { configuredDatabaseUrl, maskDatabaseUrl } from '../../src/db/database-url';
import { startEmbeddedPostgres, type EmbeddedServer } from '../../src/db/embedded-postgres';

declare global {
  var __PIXCRAWLER_TEST_SERVER__: EmbeddedServer | undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Starts the server the test files create their databases on and hands its URL to the workers
 * through PIXCRAWLER_TEST_SERVER_URL (workers inherit this process's environment).
 */
export default async function globalSetup(): Promise<void> {
  const configured = configuredDatabaseUrl();
  if (configured) {
    process.env.PIXCRAWLER_TEST_SERVER_URL = configured;
    console.log(`\nTests use the server of DATABASE_URL: ${maskDatabaseUrl(configured)}`);
    return;
  }
  const parent = mkdtempSync(path.join(tmpdir(), 'pixcrawler-test-'));
  // Run as root, PostgreSQL runs as the `postgres` user, which must be able to enter the folder.
  chmodSync(parent, 0o755);
  const dataDir = path.join(parent, 'pg');
  const server = await startEmbeddedPostgres({ dataDir, port: await freePort(), ephemeral: true });
  globalThis.__PIXCRAWLER_TEST_SERVER__ = server;
  process.env.PIXCRAWLER_TEST_SERVER_URL = server.url;
  console.log(`\nTests use an embedded PostgreSQL: ${maskDatabaseUrl(server.url)}`);
}
