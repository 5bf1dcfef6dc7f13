import { Client, type Pool } from 'pg';
import type { DataSource, QueryRunner } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { MigrationRefusedError } from './migration-refused-error';

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

/** How long the lock's session may wait for the server while the probe holds a transaction. */
const PROBE_WAIT_MS = 2_000;

const backendPid = async (query: (sql: string) => Promise<Array<{ pid: number }>>) =>
  (await query('SELECT pg_backend_pid() AS pid'))[0].pid;

/**
 * Proves that `session` is a server session of its own, as an advisory lock needs, and not a
 * client of a pooler in transaction mode, which hands each transaction whichever server session
 * is free. Two statements of one session agreeing on their backend pid prove nothing when no one
 * else is using the pooler, so a second connection (a client of its own, outside the pool) holds
 * a transaction open between them:
 * - directly or through a session-mode pool, it gets a server session of its own and `session`
 *   keeps its pid;
 * - through a transaction-mode pool, it gets `session`'s idle server session (the same pid), or
 *   `session`'s next statement gets another one (a new pid) or has to wait for it (no answer
 *   within PROBE_WAIT_MS).
 * Refuses with a `transaction-pooling` MigrationRefusedError, before the lock is taken.
 */
async function assertOwnSession(dataSource: DataSource, session: QueryRunner): Promise<void> {
  const own = await backendPid((sql) => session.query(sql));
  const pool = (dataSource.driver as PostgresDriver).master as Pool;
  const probe = new Client(pool.options);
  // A connection error after the probe is done (a pooler closing it) is no concern of ours.
  probe.on('error', () => undefined);
  await probe.connect();
  let again: Promise<number> | undefined;
  let backends: number[] = [];
  try {
    await probe.query('BEGIN');
    const other = await backendPid(async (sql) => (await probe.query(sql)).rows);
    if (other === own) {
      backends = [own];
    } else {
      again = backendPid((sql) => session.query(sql));
      let timer: NodeJS.Timeout | undefined;
      const answer = await Promise.race([
        again,
        new Promise<undefined>(
          (resolve) => (timer = setTimeout(() => resolve(undefined), PROBE_WAIT_MS)),
        ),
      ]);
      clearTimeout(timer);
      if (answer !== own) backends = answer === undefined ? [own, other] : [own, answer];
    }
  } finally {
    await probe.query('ROLLBACK').catch(() => undefined);
    await probe.end().catch(() => undefined);
    // A statement left waiting for the probe's server session has its answer now.
    await again?.catch(() => undefined);
  }
  if (backends.length > 0) {
    throw new MigrationRefusedError({ reason: 'transaction-pooling', backends });
  }
}

/**
 * Runs `work` holding the migration lock. The lock lives on its own pooled connection (the
 * advisory lock is a session's), proven to be a server session of its own first, and released
 * to the pool when the work ends. An aborted `signal` (SIGTERM, Ctrl-C) ends the wait at once
 * with the signal's reason: nothing was run.
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
    await assertOwnSession(dataSource, session);
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
