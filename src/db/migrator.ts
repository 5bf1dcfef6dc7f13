import { DataSource, MigrationExecutor, type Logger, type Migration } from 'typeorm';
import { LegacySchema1731542400000 } from '../migrations/1731542400000-LegacySchema';
import { JobTablesAndConstraints1731542400001 } from '../migrations/1731542400001-JobTablesAndConstraints';
import { ValidateConstraints1731542400003 } from '../migrations/1731542400003-ValidateConstraints';
import {
  checkLegacySchema,
  existingLegacyTables,
  formatLegacyMismatches,
  LEGACY_TABLE_NAMES,
} from './legacy-schema';
import { assertPrimary } from '../connection/server-role';
import { withMigrationLock } from './migration-lock';
import { formatPreflightReport, runPreflight, type PreflightReport } from './preflight';

/**
 * What the CLI adds around TypeORM's migration runner: one migrator at a time (an advisory
 * lock), adopting an existing database explicitly (baseline), refusing to start while existing
 * rows break a constraint still to be added (preflight), retrying with backoff when a statement
 * gives up on a lock (lock_timeout), each migration reported as it completes, and reverts that
 * respect `transaction = false`.
 */

export interface MigrationState {
  name: string;
  applied: boolean;
  /** Recorded as applied in the database but unknown to this code (a newer release ran it?). */
  unknown?: boolean;
}

export interface MigratorEvents {
  /** Another process holds the migration lock; this one waits for it. */
  waiting?: () => void;
  /** The migrations about to run, in order (empty when nothing is pending). */
  pending?: (names: string[]) => void;
  finished?: (name: string, milliseconds: number) => void;
  /** An existing database was adopted: its first migration recorded as applied, not run. */
  baselined?: (name: string) => void;
  /** Preflight ran before the constraint migrations (the report may be clean). */
  preflight?: (report: PreflightReport) => void;
  /** A statement gave up waiting for a lock (lock_timeout); the run is retried after a pause. */
  retrying?: (attempt: number, maxAttempts: number, delayMs: number, error: Error) => void;
}

export interface MigrateOptions {
  /**
   * Adopt a database that already holds the five legacy tables: check them against
   * legacy-schema.ts and record LegacySchema as applied instead of running it.
   */
  baseline?: boolean;
  /** Attempts when a migration fails with lock_not_available; default PIXCRAWLER_LOCK_RETRIES or 5. */
  lockAttempts?: number;
  /** First pause before a retry, doubled each time; default PIXCRAWLER_LOCK_RETRY_DELAY_MS or 1000. */
  retryDelayMs?: number;
}

/**
 * Why a migration run did not start. The message is written for the operator: what was found,
 * that nothing changed, and the ways out.
 */
export class MigrationRefusedError extends Error {
  constructor(
    message: string,
    readonly preflight?: PreflightReport,
  ) {
    super(message);
    this.name = 'MigrationRefusedError';
  }
}

const LEGACY_MIGRATION = new LegacySchema1731542400000().name;
/** The migrations whose constraints existing rows may break: preflight runs while one is pending. */
const CONSTRAINT_MIGRATIONS = [
  new JobTablesAndConstraints1731542400001().name,
  new ValidateConstraints1731542400003().name,
];

/** Records LegacySchema as applied, the way TypeORM records a migration (`--fake`), and nothing more. */
class BaselineExecutor extends MigrationExecutor {
  protected override getMigrations(): Migration[] {
    return super.getMigrations().filter((migration) => migration.name === LEGACY_MIGRATION);
  }
}

function numberFromEnv(name: string, fallback: number): number {
  const raw = process.env[name]?.trim();
  if (!raw) return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new Error(`${name} must be a whole number, got "${raw}"`);
  }
  return value;
}

/** SQLSTATE 55P03 lock_not_available: a statement waited longer than lock_timeout. */
export function isLockTimeout(error: unknown): boolean {
  const record = error as { code?: string; driverError?: { code?: string } } | undefined;
  return record?.code === '55P03' || record?.driverError?.code === '55P03';
}

/**
 * Runs `work` again, with exponential backoff, when it fails because a statement gave up waiting
 * for a lock. That is safe here: a transactional migration rolled back whole, and the
 * non-transactional ones are idempotent (they keep what is done and repair what is half done).
 */
async function retryingLockTimeouts<T>(
  work: () => Promise<T>,
  events: MigratorEvents,
  options: MigrateOptions,
): Promise<T> {
  const maxAttempts = Math.max(
    1,
    options.lockAttempts ?? numberFromEnv('PIXCRAWLER_LOCK_RETRIES', 5),
  );
  const firstDelay = options.retryDelayMs ?? numberFromEnv('PIXCRAWLER_LOCK_RETRY_DELAY_MS', 1000);
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!isLockTimeout(error) || attempt >= maxAttempts) throw error;
      const delay = Math.min(firstDelay * 2 ** (attempt - 1), 60_000);
      events.retrying?.(attempt, maxAttempts, delay, error as Error);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

const BASELINE_ADVICE =
  'Check the rows first with `pixcrawler-db preflight`, then adopt the database with ' +
  '`pixcrawler-db migrate --baseline`: it checks that the five tables match the legacy schema, ' +
  `records ${LEGACY_MIGRATION} as applied (without running it) and runs the rest.`;

/**
 * The guards that run, under the migration lock, before anything changes: an existing database
 * must be adopted explicitly (`baseline`) and match the legacy schema, and no row may break a
 * constraint still to be added. Records the baseline last, so a refusal changes nothing.
 */
async function prepareRun(
  dataSource: DataSource,
  pending: string[],
  events: MigratorEvents,
  options: MigrateOptions,
): Promise<void> {
  const query = <T>(sql: string, params?: unknown[]): Promise<T[]> => dataSource.query(sql, params);
  const legacyPending = pending.includes(LEGACY_MIGRATION);
  const existing = legacyPending ? await existingLegacyTables(query) : [];
  const adopting = legacyPending && existing.length > 0;

  if (legacyPending && options.baseline) {
    if (existing.length === 0) {
      throw new MigrationRefusedError(
        `--baseline adopts an existing PixCrawler database, but none of its tables ` +
          `(${LEGACY_TABLE_NAMES.join(', ')}) exist here. Nothing was changed.\n` +
          'For a new database run `pixcrawler-db migrate` without --baseline.',
      );
    }
    const mismatches = await checkLegacySchema(query);
    if (mismatches.length > 0) {
      throw new MigrationRefusedError(
        'The existing tables do not match the legacy schema this migration upgrades from, ' +
          'so --baseline will not adopt them. Nothing was changed.\n' +
          `${formatLegacyMismatches(mismatches)}\n` +
          'Bring these tables to the shape in SPEC.md ("The database before this change"), ' +
          'or restore the database this one was copied from, then run `migrate --baseline` again.',
      );
    }
  } else if (adopting) {
    throw new MigrationRefusedError(
      `This database already holds PixCrawler tables (${existing.join(', ')}) but no migration ` +
        'is recorded in it: it was created before this tool managed it, and running the first ' +
        `migration would fail with "relation already exists". Nothing was changed.\n${BASELINE_ADVICE}`,
    );
  }

  const tablesExist = !legacyPending || adopting;
  if (tablesExist && pending.some((name) => CONSTRAINT_MIGRATIONS.includes(name))) {
    const report = await runPreflight(dataSource);
    events.preflight?.(report);
    if (report.broken.length > 0) {
      throw new MigrationRefusedError(
        'Existing rows break constraints this migration adds, so it did not start. ' +
          'Nothing was changed.\n' +
          `${formatPreflightReport(report)}\n` +
          'Ways out:\n' +
          '  - `pixcrawler-db preflight --fix` backs up the rows above to a JSON Lines file, then ' +
          'deletes orphans (as CASCADE would), nulls orphaned user_id (as SET NULL would) and ' +
          'clamps out-of-range values and unknown statuses;\n' +
          '  - or repair them by hand (see the ids above), then run `pixcrawler-db migrate` again.',
        report,
      );
    }
  }

  if (adopting) {
    const executor = new BaselineExecutor(dataSource);
    executor.fake = true;
    executor.transaction = 'each';
    await executor.executePendingMigrations();
    events.baselined?.(LEGACY_MIGRATION);
  }
}

/** Every migration this code knows, oldest first, plus any applied one it does not know. */
export async function migrationStates(dataSource: DataSource): Promise<MigrationState[]> {
  const executed = await new MigrationExecutor(dataSource).getExecutedMigrations();
  const executedNames = new Set(executed.map((m) => m.name));
  const known = dataSource.migrations.map((m) => m.name ?? m.constructor.name);
  const knownNames = new Set(known);
  return [
    ...known.map((name) => ({ name, applied: executedNames.has(name) })),
    ...executed
      .filter((m) => !knownNames.has(m.name))
      .map((m) => ({ name: m.name, applied: true, unknown: true })),
  ];
}

export async function pendingMigrations(dataSource: DataSource): Promise<string[]> {
  return (await migrationStates(dataSource)).filter((m) => !m.applied).map((m) => m.name);
}

/**
 * TypeORM reports a finished migration only through its logger; this one turns those messages
 * into events and stays silent otherwise.
 */
function progressLogger(events: MigratorEvents): Logger {
  let last = Date.now();
  const success = /^Migration (\S+) has been (?:\(fake\) )?(?:executed|reverted) successfully/;
  return {
    logQuery: () => undefined,
    logQueryError: () => undefined,
    logQuerySlow: () => undefined,
    logMigration: () => undefined,
    log: () => undefined,
    logSchemaBuild: (message: string) => {
      const match = success.exec(message);
      if (match) {
        const now = Date.now();
        events.finished?.(match[1], now - last);
        last = now;
      }
    },
  };
}

async function withProgressLogger<T>(
  dataSource: DataSource,
  events: MigratorEvents,
  work: () => Promise<T>,
): Promise<T> {
  const original = dataSource.logger;
  Object.assign(dataSource, { logger: progressLogger(events) });
  try {
    return await work();
  } finally {
    Object.assign(dataSource, { logger: original });
  }
}

/**
 * Runs every pending migration, each in its own transaction unless it opts out, holding the
 * migration lock throughout. Returns the names applied: none when another process applied them
 * while this one waited. StandbyServerError, before anything else, on a standby.
 */
export async function runPendingMigrations(
  dataSource: DataSource,
  url: string,
  events: MigratorEvents = {},
  options: MigrateOptions = {},
): Promise<string[]> {
  // Before the lock: a standby grants advisory locks, then fails on the first DDL.
  await assertPrimary(dataSource, 'running migrations');
  return withMigrationLock(
    url,
    async () => {
      const pending = await pendingMigrations(dataSource);
      await prepareRun(dataSource, pending, events, options);
      const toRun = await pendingMigrations(dataSource);
      events.pending?.(toRun);
      if (toRun.length === 0) return [];
      const executor = new MigrationExecutor(dataSource);
      executor.transaction = 'each';
      await withProgressLogger(dataSource, events, () =>
        retryingLockTimeouts(() => executor.executePendingMigrations(), events, options),
      );
      const left = new Set(await pendingMigrations(dataSource));
      return toRun.filter((name) => !left.has(name));
    },
    events.waiting,
  );
}

/**
 * LegacySchema's down() drops the five tables. On an adopted database those hold everything the
 * application ever stored, and "roll back the upgrade" ends one step earlier: refuse while any of
 * them has a row.
 */
async function refuseToDropLegacyData(dataSource: DataSource): Promise<void> {
  const query = <T>(sql: string, params?: unknown[]): Promise<T[]> => dataSource.query(sql, params);
  const withRows: string[] = [];
  for (const table of await existingLegacyTables(query)) {
    const [row] = await query<{ any: boolean }>(`SELECT EXISTS (SELECT 1 FROM "${table}") AS any`);
    if (row.any) withRows.push(table);
  }
  if (withRows.length > 0) {
    throw new MigrationRefusedError(
      `Reverting ${LEGACY_MIGRATION} would drop ${withRows.join(', ')}, which hold data. ` +
        'Nothing was changed.\nThe upgrade is fully rolled back already: the tables are in the ' +
        'shape they had before it. To remove them anyway, drop them by hand (after pg_dump).',
    );
  }
}

/**
 * Undoes the last applied migration; returns its name, or undefined when none is applied.
 * StandbyServerError, before anything else, on a standby.
 */
export async function revertLastMigration(
  dataSource: DataSource,
  url: string,
  events: MigratorEvents = {},
  options: MigrateOptions = {},
): Promise<string | undefined> {
  await assertPrimary(dataSource, 'reverting a migration');
  return withMigrationLock(
    url,
    async () => {
      const applied = (await migrationStates(dataSource)).filter((m) => m.applied);
      const last = applied[applied.length - 1];
      if (!last) return undefined;
      if (last.name === LEGACY_MIGRATION) await refuseToDropLegacyData(dataSource);
      const executor = new MigrationExecutor(dataSource);
      const instance = dataSource.migrations.find((m) => m.name === last.name);
      // TypeORM's revert wraps down() in a transaction whatever the migration says; a migration
      // that opts out (CREATE INDEX CONCURRENTLY) must be reverted without one.
      executor.transaction = instance?.transaction === false ? 'none' : 'each';
      await withProgressLogger(dataSource, events, () =>
        retryingLockTimeouts(() => executor.undoLastMigration(), events, options),
      );
      return last.name;
    },
    events.waiting,
  );
}
