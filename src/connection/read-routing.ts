import type { PoolClient } from 'pg';
import type { DataSource, EntityManager, QueryRunner, ReplicationMode } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { isStandby, type RunQuery } from './server-role';

/**
 * Where a repository statement runs when the caller passes no transaction of its own.
 *
 * - `primary`: writes, claims, and reads that must see a write just made (a worker looking up
 *   the job it is running, a purge loop re-reading what it just cleared).
 * - `replica`: reads that tolerate replication lag (list and get calls, statistics). They run on
 *   TypeORM's read pool: a replica when the DataSource was built with `replication` (one of the
 *   `slaves`, chosen at random by TypeORM), the primary when it was not, or when
 *   `replication.defaultMode` is `'master'` (TypeORM's own switch for "read from the primary").
 *
 * A caller's transaction (an EntityManager with a query runner) always wins: every statement of
 * a transaction runs on its one connection, which TypeORM opens on the primary.
 */
export type ReadFrom = 'primary' | 'replica';

/** TypeORM's replication mode for a read preference. */
export function replicationMode(dataSource: DataSource, from: ReadFrom): ReplicationMode {
  return from === 'primary' ? 'master' : dataSource.defaultReplicationModeForReads();
}

/**
 * The query runner one statement runs on: the manager's own (its transaction), or a new one on
 * the server `from` names, which the caller releases (`owned`).
 */
export function statementRunner(
  manager: EntityManager,
  from: ReadFrom,
): { runner: QueryRunner; owned: boolean } {
  if (manager.queryRunner) return { runner: manager.queryRunner, owned: false };
  const dataSource = manager.connection;
  return { runner: dataSource.createQueryRunner(replicationMode(dataSource, from)), owned: true };
}

/**
 * The primary's WAL position after every transaction committed so far (an LSN as text, such as
 * `0/3000148`). The insert position, not pg_current_wal_lsn() (the write position): a commit
 * made with synchronous_commit = off returns before its WAL is written, and must count too.
 * (When the last record ended exactly at a page boundary, the insert position is just past the
 * next page's header, which a standby reaches only with the next record; the background writer
 * logs one within 15 s of activity, so a waiter is late then, never wrong.)
 */
export async function currentWalLsn(query: RunQuery): Promise<string> {
  const [row] = await query('SELECT pg_current_wal_insert_lsn()::text AS lsn');
  return String(row.lsn);
}

/**
 * Waits until a standby has replayed the WAL up to `lsn` (taken on the primary with
 * currentWalLsn): from then on it shows every transaction committed on the primary before that
 * point. Polls pg_last_wal_replay_lsn() with a short growing pause. Returns false when
 * `timeoutMs` passes first.
 */
export async function waitForReplay(
  standby: RunQuery,
  lsn: string,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (let pause = 5; ; pause = Math.min(pause * 2, 200)) {
    const [row] = await standby(
      'SELECT coalesce(pg_last_wal_replay_lsn() >= $1::pg_lsn, false) AS caught_up',
      [lsn],
    );
    if (row.caught_up === true) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

export interface CaughtUpReaderOptions {
  /** How long to wait for a lagging replica before reading from the primary. Default 10 s. */
  maxWaitMs?: number;
}

/**
 * A pooled connection as TypeORM's driver hands it out: the pg client and its release, which
 * takes an error to close the connection instead of returning it to the pool (a COPY left
 * unfinished cannot be ended from the client).
 */
export type PooledConnection = [client: PoolClient, release: (error?: Error) => void];

/**
 * A connection for a long read that must not miss anything committed before it started (an
 * export streaming a crawl job's images). On a replica, it first waits until that replica has
 * replayed the primary's WAL up to now; if that takes longer than `maxWaitMs`, the read moves
 * to the primary: slower for the primary, never incomplete. Without replicas it is a primary
 * connection and nothing is waited for. The caller releases it.
 */
export async function obtainCaughtUpConnection(
  dataSource: DataSource,
  options: CaughtUpReaderOptions = {},
): Promise<PooledConnection> {
  // TypeORM's PostgresDriver hands out pooled clients itself; without replication its
  // "slave" connection is a primary one.
  const driver = dataSource.driver as PostgresDriver;
  const reader = (await (replicationMode(dataSource, 'replica') === 'slave'
    ? driver.obtainSlaveConnection()
    : driver.obtainMasterConnection())) as PooledConnection;
  const [client, release] = reader;
  try {
    const onReader: RunQuery = async (sql, params) => (await client.query(sql, params)).rows;
    if (!(await isStandby(onReader))) return reader;
    const lsn = await currentWalLsn((sql, params) => dataSource.query(sql, params));
    if (await waitForReplay(onReader, lsn, options.maxWaitMs ?? 10_000)) return reader;
  } catch (error) {
    release(error as Error);
    throw error;
  }
  release();
  return (await driver.obtainMasterConnection()) as PooledConnection;
}
