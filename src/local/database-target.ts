import { Client } from 'pg';
import {
  assertPostgresUrl,
  configuredDatabaseUrl,
  InvalidDatabaseUrlError,
  maskDatabaseUrl,
  withDatabase,
} from '../connection/database-url';
import { startEmbeddedPostgres, type EmbeddedServerOptions } from './embedded-postgres';

/** The database a command works on: `DATABASE_URL`, or the embedded default. */
export interface DatabaseTarget {
  url: string;
  /** What to tell the operator: the masked URL, and whether it is the embedded server. */
  label: string;
  /** Stops the embedded server if this process started it. */
  close(): Promise<void>;
}

/** Name of the database the CLI uses on the embedded server. */
export const EMBEDDED_DATABASE = 'pixcrawler';

export async function ensureDatabaseExists(serverUrl: string, database: string): Promise<void> {
  const client = new Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
      database,
    ]);
    if (!rowCount) {
      await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`).catch((error) => {
        // 42P04 duplicate_database: another process created it between our check and now.
        if ((error as { code?: string }).code !== '42P04') throw error;
      });
    }
  } finally {
    await client.end();
  }
}

export async function openDatabaseTarget(
  embeddedOptions: EmbeddedServerOptions = {},
): Promise<DatabaseTarget> {
  const configured = configuredDatabaseUrl();
  if (configured) {
    assertPostgresUrl(configured);
    return { url: configured, label: maskDatabaseUrl(configured), close: async () => undefined };
  }
  // A production release script that lost DATABASE_URL must fail, not "succeed" on a
  // development database of its own.
  if (process.env.NODE_ENV === 'production') {
    throw new InvalidDatabaseUrlError(
      'DATABASE_URL is unset and NODE_ENV is production: refusing to start the embedded ' +
        'development database. Set DATABASE_URL to the database to use.',
      'no-embedded-in-production',
    );
  }
  const server = await startEmbeddedPostgres(embeddedOptions);
  await ensureDatabaseExists(server.url, EMBEDDED_DATABASE);
  const url = withDatabase(server.url, EMBEDDED_DATABASE);
  return {
    url,
    label: `${maskDatabaseUrl(url)} (embedded PostgreSQL, data in ${server.dataDir}; set DATABASE_URL to use another server)`,
    close: () => server.stop(),
  };
}
