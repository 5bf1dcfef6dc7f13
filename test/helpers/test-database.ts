import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { withDatabase } from '../../src/db/database-url';
import { dataSourceOptions } from '../../src/db/data-source-options';

/**
 * A fresh database for one test file, on the run's server (see global-setup.ts), dropped at the
 * end. Files never share a database, so they can run in parallel.
 */
export interface TestDatabase {
  name: string;
  url: string;
  /** A DataSource on this database with the project's options, initialised. */
  connect(): Promise<DataSource>;
  /** Runs every migration on a new connection. */
  migrate(): Promise<void>;
  /** Runs a query on a short-lived plain connection. */
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

export function testServerUrl(): string {
  const url = process.env.PIXCRAWLER_TEST_SERVER_URL;
  if (!url) {
    throw new Error('PIXCRAWLER_TEST_SERVER_URL is unset: run the tests through jest (npm test).');
  }
  return url;
}

async function onServer<T>(fn: (client: Client) => Promise<T>, database = 'postgres'): Promise<T> {
  const client = new Client({ connectionString: withDatabase(testServerUrl(), database) });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  const name = `pixcrawler_${label.replace(/\W/g, '_').toLowerCase()}_${randomBytes(4).toString('hex')}`;
  await onServer((client) => client.query(`CREATE DATABASE "${name}"`));
  const url = withDatabase(testServerUrl(), name);
  const opened: DataSource[] = [];

  const connect = async () => {
    const dataSource = new DataSource(dataSourceOptions({ url }));
    await dataSource.initialize();
    opened.push(dataSource);
    return dataSource;
  };

  return {
    name,
    url,
    connect,
    async migrate() {
      const dataSource = new DataSource(dataSourceOptions({ url }));
      await dataSource.initialize();
      try {
        await dataSource.runMigrations();
      } finally {
        await dataSource.destroy();
      }
    },
    query: <T>(sql: string, params?: unknown[]) =>
      onServer(async (client) => (await client.query(sql, params)).rows as T[], name),
    async drop() {
      await Promise.all(opened.filter((ds) => ds.isInitialized).map((ds) => ds.destroy()));
      await onServer((client) => client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}
