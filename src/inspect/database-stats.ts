import type { DataSource } from 'typeorm';
import { replicationMode } from '../connection/read-routing';
import { isStandby } from '../connection/server-role';
import { currentSchema } from './schema-catalog';

/**
 * The guide's "Monitoring" queries as data: table sizes and row estimates, index usage and
 * size. (The guide's index query selects `tablename` and `indexname` from pg_stat_user_indexes,
 * whose columns are `relname` and `indexrelname`; these queries use the real names.)
 */

export interface TableStats {
  table: string;
  /**
   * Planner's estimate (pg_class.reltuples), or the live-tuple count of the statistics
   * collector when the table was never analysed (reltuples is -1, or 0 before PostgreSQL 14).
   */
  rowEstimate: number;
  tableBytes: number;
  indexBytes: number;
  totalBytes: number;
  tableSize: string;
  indexSize: string;
  totalSize: string;
}

export interface IndexStats {
  table: string;
  index: string;
  /** Index scans since statistics were last reset (pg_stat_user_indexes.idx_scan). */
  scans: number;
  tuplesRead: number;
  tuplesFetched: number;
  bytes: number;
  size: string;
  unique: boolean;
  primary: boolean;
  /** False for an INVALID index (an interrupted concurrent build): maintained, never used. */
  valid: boolean;
  /** Never scanned. A primary key or unique index still earns its keep by enforcing uniqueness. */
  unused: boolean;
}

export interface DatabaseStats {
  schema: string;
  /**
   * True when the figures were read on a standby (a replica, or DATABASE_URL pointing at one).
   * Sizes and row estimates are the primary's (a physical replica is a copy of its files), but
   * scan counters are per server: a standby's count the reads it answered itself.
   */
  standby: boolean;
  /** When the scan counters started counting (null: since the cluster was created). */
  statsSince: Date | null;
  tables: TableStats[];
  indexes: IndexStats[];
}

const TABLES_SQL = `
  SELECT c.relname AS table,
         CASE WHEN c.reltuples > 0 THEN c.reltuples::bigint
              ELSE coalesce(s.n_live_tup, 0) END AS row_estimate,
         pg_table_size(c.oid) AS table_bytes,
         pg_indexes_size(c.oid) AS index_bytes,
         pg_total_relation_size(c.oid) AS total_bytes,
         pg_size_pretty(pg_table_size(c.oid)) AS table_size,
         pg_size_pretty(pg_indexes_size(c.oid)) AS index_size,
         pg_size_pretty(pg_total_relation_size(c.oid)) AS total_size
    FROM pg_class c
    LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
   WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p')
   ORDER BY pg_total_relation_size(c.oid) DESC, c.relname`;

const INDEXES_SQL = `
  SELECT s.relname AS table,
         s.indexrelname AS index,
         s.idx_scan AS scans,
         s.idx_tup_read AS tuples_read,
         s.idx_tup_fetch AS tuples_fetched,
         pg_relation_size(s.indexrelid) AS bytes,
         pg_size_pretty(pg_relation_size(s.indexrelid)) AS size,
         i.indisunique AS unique,
         i.indisprimary AS primary,
         i.indisvalid AS valid
    FROM pg_stat_user_indexes s
    JOIN pg_index i ON i.indexrelid = s.indexrelid
   WHERE s.schemaname = $1
   ORDER BY s.relname, s.indexrelname`;

const STATS_SINCE_SQL = `
  SELECT stats_reset AS since FROM pg_stat_database WHERE datname = current_database()`;

interface TableRow {
  table: string;
  row_estimate: string;
  table_bytes: string;
  index_bytes: string;
  total_bytes: string;
  table_size: string;
  index_size: string;
  total_size: string;
}

interface IndexRow {
  table: string;
  index: string;
  scans: string;
  tuples_read: string;
  tuples_fetched: string;
  bytes: string;
  size: string;
  unique: boolean;
  primary: boolean;
  valid: boolean;
}

/**
 * Read-only and lag-tolerant, so it runs on a replica when the DataSource has one (see
 * ReadFrom); all of it on one connection, so the figures come from one server.
 */
export async function readDatabaseStats(dataSource: DataSource): Promise<DatabaseStats> {
  const schema = await currentSchema(dataSource);
  const runner = dataSource.createQueryRunner(replicationMode(dataSource, 'replica'));
  try {
    const query = (sql: string, params?: unknown[]) => runner.query(sql, params);
    const tableRows: TableRow[] = await query(TABLES_SQL, [schema]);
    const indexRows: IndexRow[] = await query(INDEXES_SQL, [schema]);
    const [since]: { since: Date | null }[] = await query(STATS_SINCE_SQL);
    return statsFromRows(
      schema,
      await isStandby(query),
      since?.since ?? null,
      tableRows,
      indexRows,
    );
  } finally {
    await runner.release();
  }
}

function statsFromRows(
  schema: string,
  standby: boolean,
  statsSince: Date | null,
  tableRows: TableRow[],
  indexRows: IndexRow[],
): DatabaseStats {
  return {
    schema,
    standby,
    statsSince,
    // bigint columns arrive as strings from pg; these counts and sizes fit a number.
    tables: tableRows.map((row) => ({
      table: row.table,
      rowEstimate: Number(row.row_estimate),
      tableBytes: Number(row.table_bytes),
      indexBytes: Number(row.index_bytes),
      totalBytes: Number(row.total_bytes),
      tableSize: row.table_size,
      indexSize: row.index_size,
      totalSize: row.total_size,
    })),
    indexes: indexRows.map((row) => ({
      table: row.table,
      index: row.index,
      scans: Number(row.scans),
      tuplesRead: Number(row.tuples_read),
      tuplesFetched: Number(row.tuples_fetched),
      bytes: Number(row.bytes),
      size: row.size,
      unique: row.unique,
      primary: row.primary,
      valid: row.valid,
      unused: Number(row.scans) === 0,
    })),
  };
}
