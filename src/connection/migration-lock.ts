import { Client } from 'pg';

/**
 * One migrator at a time. TypeORM has no lock of its own (typeorm issue #4588), so two deploys
 * starting at once would both run the same migration. The CLI holds a PostgreSQL advisory lock
 * on a dedicated session for the whole run: a second migrator waits, then finds nothing pending.
 * If the process dies, its session ends and PostgreSQL releases the lock by itself.
 */

/** Fixed key: any process migrating this database, whatever its version, uses the same one. */
export const MIGRATION_LOCK_KEY = 7_315_424_000; // "PixCrawler migrations", fits in a bigint

/**
 * Polls pg_try_advisory_lock instead of blocking in pg_advisory_lock: a statement blocked there
 * holds a snapshot for as long as it waits, and CREATE INDEX CONCURRENTLY in the running
 * migration waits for every older snapshot to go away, so the two would wait for each other
 * forever (PostgreSQL sees no lock cycle to break). Each try is over at once.
 */
async function waitForLock(client: Client): Promise<void> {
  for (let pause = 100; ; pause = Math.min(pause * 2, 1000)) {
    await new Promise((resolve) => setTimeout(resolve, pause));
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1) AS locked',
      [MIGRATION_LOCK_KEY],
    );
    if (rows[0].locked) return;
  }
}

export async function withMigrationLock<T>(
  url: string,
  work: () => Promise<T>,
  onWait: () => void = () => undefined,
): Promise<T> {
  const client = new Client({ connectionString: url, application_name: 'pixcrawler-db lock' });
  await client.connect();
  try {
    const { rows } = await client.query<{ locked: boolean }>(
      'SELECT pg_try_advisory_lock($1) AS locked',
      [MIGRATION_LOCK_KEY],
    );
    if (!rows[0].locked) {
      onWait();
      await waitForLock(client);
    }
    try {
      return await work();
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await client.end();
  }
}
