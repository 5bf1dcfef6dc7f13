import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource, type DataSourceOptions } from 'typeorm';
import { withDatabase } from '../connection/database-url';
import { dataSourceOptions } from '../connection/data-source-options';
import { quoteIdentifier } from '../sql/quote';

/**
 * A fresh database on a test server, for one test file: create it, migrate it, drop it. Test
 * files never share a database, so they can run in parallel.
 */
export interface TestDatabase {
  name: string;
  url: string;
  /** A new DataSource on this database with `dataSourceOptions`, initialised. */
  connect(): Promise<DataSource>;
  /** Runs every migration `dataSourceOptions` lists. */
  migrate(): Promise<void>;
  /** A query on a short-lived plain connection. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Closes every DataSource `connect()` opened and drops the database. */
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** Server to create the database on; default PIXCRAWLER_TEST_SERVER_URL, then DATABASE_URL. */
  serverUrl?: string;
  /** Part of the database name, to tell suites apart on a shared server. */
  label?: string;
  /**
   * The start of the database name (default `pixcrawler`): `<prefix>_<label>_<8 hex digits>`.
   * Lower-case letters, digits and `_`, starting with a letter or `_`, at most 20 characters.
   */
  prefix?: string;
  /**
   * The options connect() and migrate() use for this database's URL. Default the package's
   * `dataSourceOptions({ url })`; an app whose migrations run beside the package's (one stream)
   * passes its own, so migrate() creates its tables too and connect() knows its entities.
   */
  dataSourceOptions?: (url: string) => DataSourceOptions;
}

function defaultServerUrl(): string {
  const url = process.env.PIXCRAWLER_TEST_SERVER_URL ?? process.env.DATABASE_URL;
  if (!url) {
    throw new Error(
      'No test server: pass { serverUrl }, or start one with startTestServer() in a global set-up ' +
        'and put its url in PIXCRAWLER_TEST_SERVER_URL.',
    );
  }
  return url;
}

async function onDatabase<T>(url: string, work: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * The app's options must use the URL they are given: options that still read DATABASE_URL would
 * migrate, and let tests write to, the app's own database.
 */
function assertConnectsTo(options: DataSourceOptions, url: string, name: string): void {
  const { url: given, database } = options as { url?: string; database?: string };
  if (given === url || (given === undefined && database === name)) return;
  throw new Error(
    `createTestDatabase: dataSourceOptions(url) returned options for another database; ` +
      `use the url it is given (that of the test database ${name}).`,
  );
}

export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const serverUrl = options.serverUrl ?? defaultServerUrl();
  const label = (options.label ?? 'test').replace(/\W/g, '_').toLowerCase().slice(0, 30);
  const prefix = options.prefix ?? 'pixcrawler';
  if (!/^[a-z_][a-z0-9_]{0,19}$/.test(prefix)) {
    throw new Error(
      `createTestDatabase: prefix must be lower-case letters, digits and _, starting with a ` +
        `letter or _, at most 20 characters (got ${JSON.stringify(prefix)})`,
    );
  }
  const name = `${prefix}_${label}_${randomBytes(4).toString('hex')}`;
  const url = withDatabase(serverUrl, name);
  // Before CREATE DATABASE: options that throw leave no database behind.
  const connection = options.dataSourceOptions?.(url) ?? dataSourceOptions({ url });
  assertConnectsTo(connection, url, name);
  await onDatabase(serverUrl, (client) => client.query(`CREATE DATABASE ${quoteIdentifier(name)}`));
  const opened: DataSource[] = [];

  const connect = async () => {
    const dataSource = new DataSource(connection);
    await dataSource.initialize();
    opened.push(dataSource);
    return dataSource;
  };

  return {
    name,
    url,
    connect,
    async migrate() {
      const dataSource = new DataSource(connection);
      await dataSource.initialize();
      try {
        await dataSource.runMigrations({ transaction: 'each' });
      } finally {
        await dataSource.destroy();
      }
    },
    query: <T>(sql: string, params?: unknown[]) =>
      onDatabase(url, async (client) => (await client.query(sql, params)).rows as T[]),
    async drop() {
      await Promise.all(opened.filter((ds) => ds.isInitialized).map((ds) => ds.destroy()));
      // WITH (FORCE) (PostgreSQL 13+) ends any connection a failed test left open.
      await onDatabase(serverUrl, (client) =>
        client.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`),
      );
    },
  };
}
