import type { Pool, PoolClient } from 'pg';
import type { DataSource } from 'typeorm';
import type { PostgresConnectionCredentialsOptions } from 'typeorm/driver/postgres/PostgresConnectionCredentialsOptions';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { maskDatabaseUrl } from './database-url';

export interface ReplicaFallbackOptions {
  /** How long a replica that failed is left alone before a read tries it again. Default 5 s. */
  retryAfterMs?: number;
  /**
   * A replica stopped answering (at start-up or later): reads go to the other replicas, or the
   * primary. Default: a warning through the DataSource's logger.
   */
  onReplicaDown?: (replica: string, error: Error) => void;
  /** A replica that was down answered again: reads go to it again. Default: a logger line. */
  onReplicaBack?: (replica: string) => void;
}

/** The connection settings TypeORM keeps for one server of `replication`. */
type Credentials = PostgresConnectionCredentialsOptions;
/** The driver's protected pool factory, which this replaces for replicas. */
type CreatePool = (options: PostgresDriver['options'], credentials: Credentials) => Promise<Pool>;
type Connection = [PoolClient, (error?: Error) => void];

interface Replica {
  name: string;
  /** Its place in the driver's `slaves` (TypeORM keeps them in the configured order). */
  index: number;
  credentials: Credentials;
  /** Its pool, once one could be made (TypeORM makes one only when a first connection works). */
  pool?: Pool;
  /** Set while it is down: when a read may try it again. */
  retryAt?: number;
}

/** A stand-in in the driver's `slaves` for a replica that was down when the pools were made. */
const ABSENT_POOL = {
  end: (done?: (error?: Error) => void) => done?.(),
  on: () => ABSENT_POOL,
} as unknown as Pool;

/**
 * Keeps an application reading when a replica of its DataSource (TypeORM's `replication.slaves`)
 * is down, at start-up or later: `initialize()` succeeds as long as the primary answers, reads
 * meant for replicas go to another replica or the primary while one is down (`onReplicaDown`),
 * and to it again once it answers (`onReplicaBack`, tried at most every `retryAfterMs`). Writes
 * and transactions are the primary's as always. Call it before `initialize()`; returns the
 * DataSource. TypeORM has no hook for this: it replaces two methods of this DataSource's driver
 * (making its replica pools, and taking a replica connection), nothing global.
 *
 * ```ts
 * const dataSource = useReplicaFallback(new DataSource(dataSourceOptions({ replication })));
 * await dataSource.initialize();
 * ```
 */
export function useReplicaFallback(
  dataSource: DataSource,
  options: ReplicaFallbackOptions = {},
): DataSource {
  if (dataSource.isInitialized) {
    throw new Error('useReplicaFallback must be called before the DataSource is initialized');
  }
  const driver = dataSource.driver as PostgresDriver;
  const pools = driver as unknown as { createPool: CreatePool };
  const configured: Credentials[] = driver.options.replication?.slaves ?? [];
  if (configured.length === 0) return dataSource;
  const retryAfterMs = options.retryAfterMs ?? 5_000;
  const logger = () => dataSource.logger;
  const onDown =
    options.onReplicaDown ??
    ((replica: string, error: Error) =>
      logger().log(
        'warn',
        `Replica ${replica} is down (${error.message}): reading from the primary or another replica until it answers.`,
      ));
  const onBack =
    options.onReplicaBack ??
    ((replica: string) =>
      logger().log('info', `Replica ${replica} answers again: reading from it.`));

  const replicas: Replica[] = configured.map((credentials, index) => ({
    name: replicaName(credentials),
    index,
    credentials,
  }));
  const createPool = pools.createPool.bind(driver);
  const markDown = (replica: Replica, error: Error) => {
    const wasUp = replica.retryAt === undefined;
    replica.retryAt = Date.now() + retryAfterMs;
    if (wasUp) onDown(replica.name, error);
  };

  pools.createPool = async (poolOptions, credentials) => {
    const replica = replicas.find((r) => r.credentials === credentials);
    if (!replica) return createPool(poolOptions, credentials);
    try {
      replica.pool = await createPool(poolOptions, credentials);
      return replica.pool;
    } catch (error) {
      markDown(replica, error as Error);
      return ABSENT_POOL;
    }
  };

  const connect = (pool: Pool) =>
    new Promise<Connection>((resolve, reject) =>
      pool.connect((error, client, release) =>
        error || !client ? reject(error ?? new Error('no connection')) : resolve([client, release]),
      ),
    );

  driver.obtainSlaveConnection = async () => {
    const now = Date.now();
    const usable = replicas.filter((r) => r.retryAt === undefined || r.retryAt <= now);
    // Random among those usable, as TypeORM picks; a failed one is skipped for the next.
    for (const replica of usable.sort(() => Math.random() - 0.5)) {
      const wasDown = replica.retryAt !== undefined;
      try {
        if (!replica.pool) {
          replica.pool = await createPool(driver.options, replica.credentials);
          driver.slaves[replica.index] = replica.pool; // closed with the others on destroy()
        }
        const connection = await connect(replica.pool);
        if (wasDown) {
          replica.retryAt = undefined;
          onBack(replica.name);
        }
        return connection;
      } catch (error) {
        markDown(replica, error as Error);
      }
    }
    return driver.obtainMasterConnection();
  };
  return dataSource;
}

/** A replica's host, port and database, with no password, for messages. */
function replicaName(credentials: Credentials): string {
  if (typeof credentials.url === 'string') return maskDatabaseUrl(credentials.url);
  const host = String(credentials.host ?? 'localhost');
  const port = String(credentials.port ?? 5432);
  return `${host}:${port}/${String(credentials.database ?? '')}`;
}
