import type { DataSource, QueryRunner } from 'typeorm';

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
async function tryLock(session: QueryRunner): Promise<boolean> {
  const [row]: { locked: boolean }[] = await session.query(
    'SELECT pg_try_advisory_lock($1) AS locked',
    [MIGRATION_LOCK_KEY],
  );
  return row.locked;
}

/** Waits for the lock, or throws the signal's reason as soon as it is aborted. */
async function waitForLock(session: QueryRunner, signal?: AbortSignal): Promise<void> {
  for (let pause = 100; ; pause = Math.min(pause * 2, 1000)) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(done, pause);
      signal?.addEventListener('abort', done, { once: true });
      function done() {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      }
    });
    signal?.throwIfAborted();
    if (await tryLock(session)) return;
  }
}

/**
 * Runs `work` holding the migration lock. The lock lives on its own pooled connection (the
 * advisory lock is a session's), which is released to the pool when the work ends. An aborted
 * `signal` (SIGTERM, Ctrl-C) ends the wait at once with the signal's reason: nothing was run.
 */
export async function withMigrationLock<T>(
  dataSource: DataSource,
  work: () => Promise<T>,
  onWait: () => void = () => undefined,
  signal?: AbortSignal,
): Promise<T> {
  signal?.throwIfAborted();
  const session = dataSource.createQueryRunner('master');
  await session.connect();
  try {
    if (!(await tryLock(session))) {
      onWait();
      await waitForLock(session, signal);
    }
    try {
      return await work();
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]);
    }
  } finally {
    await session.release();
  }
}
