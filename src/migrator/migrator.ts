import { DataSource, MigrationExecutor, type Logger, type Migration } from 'typeorm';
import { validateSettings, wholeNumberSetting } from '../settings';
import { withMigrationLock } from './migration-lock';
import { assertPrimary } from '../connection/server-role';
import {
  incompleteMigrations,
  migrationStates,
  pendingMigrations,
  type IncompleteMigration,
} from '../inspect/migration-states';
import { applyMigrationTimeouts } from '../migrations/lock-safe-ddl';
import { migrationName, type PixCrawlerMigration } from '../migrations/migration-traits';
import {
  baselineStatements,
  checkAdoption,
  type AdoptionOptions,
  type AdoptionReport,
  type ColumnRename,
  type TimestampConversion,
} from '../upgrade/adoption';
import { existingLegacyTables, existingTables, LEGACY_TABLE_NAMES } from '../upgrade/legacy-schema';
import { detectOrigin } from '../upgrade/origin';
import { runPreflight, type PreflightReport } from '../upgrade/preflight';
import { MigrationRefusedError } from './migration-refused-error';
import { quoteIdentifier } from '../sql/quote';

export {
  MigrationRefusedError,
  type MigrationRefusal,
  type RefusalReason,
} from './migration-refused-error';

export {
  migrationStates,
  pendingMigrations,
  type MigrationState,
} from '../inspect/migration-states';

/**
 * What the CLI adds around TypeORM's migration runner: one migrator at a time (an advisory
 * lock), adopting an existing database explicitly (baseline), refusing to start while existing
 * rows break a constraint still to be added (preflight), retrying with backoff when a statement
 * gives up on a lock (lock_timeout), each migration reported as it completes, and reverts that
 * respect `transaction = false`.
 */

export interface MigratorEvents {
  /** Another process holds the migration lock; this one waits for it. */
  waiting?: () => void;
  /** The migrations about to run, in order (empty when nothing is pending). */
  pending?: (names: string[]) => void;
  finished?: (name: string, milliseconds: number) => void;
  /** An existing database was adopted: its first migration recorded as applied, not run. */
  baselined?: (name: string) => void;
  /** A recorded migration's missing objects were made again by running its up() again. */
  repaired?: (migration: IncompleteMigration) => void;
  /** A recorded migration's objects are missing and running it again is not safe: say so. */
  incomplete?: (migration: IncompleteMigration) => void;
  /** Adopting an existing database: how its tables differ from the legacy shape, classified. */
  adopting?: (report: AdoptionReport) => void;
  /** The baseline step converted timestamp columns to timestamptz. */
  converted?: (conversions: TimestampConversion[]) => void;
  /** The baseline step renamed columns from their former names (`metadata_` → `metadata`). */
  renamed?: (renames: ColumnRename[]) => void;
  /** Preflight ran before the constraint migrations (the report may be clean). */
  preflight?: (report: PreflightReport) => void;
  /** A statement gave up waiting for a lock (lock_timeout); the run is retried after a pause. */
  retrying?: (attempt: number, maxAttempts: number, delayMs: number, error: Error) => void;
}

export interface MigrateOptions extends AdoptionOptions {
  /**
   * Adopt a database that already holds PixCrawler's tables (pre-001, made by the web app's ORM,
   * or by PixCrawler's Alembic 001): classify their differences from what the migrations start
   * from (upgrade/adoption.ts), convert what converts in place, and record LegacySchema as
   * applied instead of running it.
   */
  baseline?: boolean;
  /** Attempts when a migration fails with lock_not_available; default PIXCRAWLER_LOCK_RETRIES or 5. */
  lockAttempts?: number;
  /** First pause before a retry, doubled each time; default PIXCRAWLER_LOCK_RETRY_DELAY_MS or 1000. */
  retryDelayMs?: number;
  /**
   * Stops the run (SIGTERM, Ctrl-C): a wait for the migration lock ends at once, and no migration
   * starts after the one running (which finishes or rolls back as it would). Throws the signal's
   * reason.
   */
  signal?: AbortSignal;
}

/** The migrations the runner was given, with what each declares about itself. */
function declaredMigrations(dataSource: DataSource): PixCrawlerMigration[] {
  return dataSource.migrations as PixCrawlerMigration[];
}

/** The migration an existing database adopts instead of running (LegacySchema), if any. */
export function adoptingMigration(dataSource: DataSource): string | undefined {
  const migration = declaredMigrations(dataSource).find((m) => m.adoptsExistingTables);
  return migration && migrationName(migration);
}

/** The migrations whose constraints existing rows may break: preflight runs while one is pending. */
function constrainingMigrations(dataSource: DataSource): string[] {
  return declaredMigrations(dataSource)
    .filter((m) => m.constrainsExistingRows)
    .map(migrationName);
}

/** TypeORM's executor, limited to the named migrations (run or recorded in their order). */
class SelectedMigrationsExecutor extends MigrationExecutor {
  constructor(
    dataSource: DataSource,
    private readonly names: readonly string[],
  ) {
    super(dataSource);
  }

  protected override getMigrations(): Migration[] {
    return super.getMigrations().filter((migration) => this.names.includes(migration.name));
  }
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
    options.lockAttempts ?? wholeNumberSetting('PIXCRAWLER_LOCK_RETRIES', 5),
  );
  const firstDelay =
    options.retryDelayMs ?? wholeNumberSetting('PIXCRAWLER_LOCK_RETRY_DELAY_MS', 1000);
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

/** What a migrate run would do, decided under the migration lock before anything changes. */
export interface RunDecision {
  /** Known migrations not yet recorded, oldest first (LegacySchema included when adopting). */
  pending: string[];
  /**
   * Adopting an existing database: how its tables differ, classified. With `baseline`, the
   * baseline step converts and LegacySchema is recorded, not run; without, a pending migration
   * adopts tables that exist already (the job tables of a database Alembic built).
   */
  adoption?: AdoptionReport;
  /** The baseline step runs: LegacySchema is pending and its tables are adopted. */
  baseline?: boolean;
  /** Preflight, when a constraint migration is pending on tables that exist (may be clean). */
  preflight?: PreflightReport;
}

/**
 * The guards that run, under the migration lock, before anything changes: no migration recorded
 * that this code does not know, an existing database adopted explicitly (`baseline`) and with no
 * difference from the legacy shape that nothing safe resolves, and no row breaking a constraint
 * still to be added. Reads only; `plan` calls it too (reporting broken rows instead of refusing).
 */
export async function decideRun(
  dataSource: DataSource,
  options: MigrateOptions = {},
  { brokenRows = 'refuse' }: { brokenRows?: 'refuse' | 'report' } = {},
): Promise<RunDecision> {
  const states = await migrationStates(dataSource);
  const unknown = states.filter((state) => state.unknown).map((state) => state.name);
  if (unknown.length > 0) {
    throw new MigrationRefusedError({ reason: 'unknown-migrations', migrations: unknown });
  }
  const pending = states.filter((state) => !state.applied).map((state) => state.name);
  const query = <T>(sql: string, params?: unknown[]): Promise<T[]> => dataSource.query(sql, params);
  // The adopting migration (LegacySchema) while it is pending, else undefined.
  const adopted = pending.find((name) => name === adoptingMigration(dataSource));
  const existing = adopted ? await existingLegacyTables(query) : [];
  const adopting = adopted !== undefined && existing.length > 0;
  let adoption: AdoptionReport | undefined;

  if (adopted && options.baseline) {
    if (existing.length === 0) {
      throw new MigrationRefusedError({
        reason: 'nothing-to-adopt',
        migration: adopted,
        expectedTables: [...LEGACY_TABLE_NAMES],
      });
    }
    adoption = await checkAdoption(dataSource, options);
  } else if (adopted && adopting) {
    throw new MigrationRefusedError({
      reason: 'adoption-required',
      migration: adopted,
      existingTables: existing,
      origin: await detectOrigin(dataSource),
    });
  } else if (!adopted && (await tablesPendingMigrationsCreate(dataSource, pending)).length > 0) {
    // A managed database whose job tables exist before the migration that creates them (it was
    // reverted with rows in them, which it keeps): the same classification decides.
    adoption = await checkAdoption(dataSource, options);
  }
  if (adoption && adoption.refusals.length > 0) {
    throw new MigrationRefusedError({
      reason: 'legacy-shape-mismatch',
      migration: adopted ?? pending[0],
      adoption,
    });
  }

  const tablesExist = !adopted || adopting;
  const constraining = pending.filter((name) => constrainingMigrations(dataSource).includes(name));
  let preflight: PreflightReport | undefined;
  if (tablesExist && constraining.length > 0) {
    preflight = await runPreflight(dataSource);
    if (preflight.broken.length > 0 && brokenRows === 'refuse') {
      throw new MigrationRefusedError({
        reason: 'rows-break-constraints',
        migrations: constraining,
        preflight,
      });
    }
  }
  return {
    pending,
    ...(adoption ? { adoption } : {}),
    ...(adoption && adopted ? { baseline: true } : {}),
    ...(preflight ? { preflight } : {}),
  };
}

/**
 * Tables that pending migrations (other than the adopted LegacySchema) create and that exist
 * already: such a migration adopts them (JobTablesAndConstraints on a database Alembic built).
 */
async function tablesPendingMigrationsCreate(
  dataSource: DataSource,
  pending: readonly string[],
): Promise<string[]> {
  const created = declaredMigrations(dataSource)
    .filter((m) => pending.includes(migrationName(m)) && !m.adoptsExistingTables)
    .flatMap((m) => (m.creates ?? []).filter((o) => o.kind === 'table').map((o) => o.table));
  if (created.length === 0) return [];
  return existingTables((sql, params) => dataSource.query(sql, params), created);
}

/**
 * The baseline step: the conversions the adoption classified (columns renamed from former names,
 * timestamps to timestamptz), in one transaction under the migration lock timeout, then
 * LegacySchema recorded as applied. The conversions are idempotent (a converted column is no
 * longer classified), so a run that fails between the two is simply run again.
 */
async function adopt(
  dataSource: DataSource,
  adoption: AdoptionReport,
  events: MigratorEvents,
  options: MigrateOptions,
): Promise<void> {
  const statements = baselineStatements(adoption);
  if (statements.length > 0) {
    await retryingLockTimeouts(
      async () => {
        const runner = dataSource.createQueryRunner();
        await runner.connect();
        try {
          await runner.startTransaction();
          try {
            await applyMigrationTimeouts(runner, { transactional: true });
            for (const statement of statements) await runner.query(statement);
            await runner.commitTransaction();
          } catch (error) {
            await runner.rollbackTransaction();
            throw error;
          }
        } finally {
          await runner.release();
        }
      },
      events,
      options,
    );
    if (adoption.renames.length > 0) events.renamed?.(adoption.renames);
    if (adoption.conversions.length > 0) events.converted?.(adoption.conversions);
  }
  const executor = new SelectedMigrationsExecutor(dataSource, [
    adoptingMigration(dataSource) ?? '',
  ]);
  executor.fake = true;
  executor.transaction = 'each';
  await executor.executePendingMigrations();
  events.baselined?.(adoptingMigration(dataSource) ?? '');
}

/**
 * Recorded migrations whose objects are missing (an interrupted revert removes the record last):
 * a rerunnable one runs its up() again, which makes only what is missing; any other is reported.
 */
async function repairIncomplete(
  dataSource: DataSource,
  events: MigratorEvents,
  options: MigrateOptions,
): Promise<void> {
  const migrations = declaredMigrations(dataSource);
  for (const incomplete of await incompleteMigrations(dataSource)) {
    const migration = migrations.find((m) => migrationName(m) === incomplete.name);
    if (!migration || !incomplete.rerunnable) {
      events.incomplete?.(incomplete);
      continue;
    }
    await retryingLockTimeouts(
      async () => {
        const runner = dataSource.createQueryRunner();
        await runner.connect();
        try {
          await migration.up(runner);
        } finally {
          await runner.release();
        }
      },
      events,
      options,
    );
    events.repaired?.(incomplete);
  }
}

type MigratorArguments =
  | [events?: MigratorEvents, options?: MigrateOptions]
  | [url: string, events?: MigratorEvents, options?: MigrateOptions];

/** Reads both call shapes: (events, options) and the deprecated (url, events, options). */
function migratorArguments(args: MigratorArguments): {
  events: MigratorEvents;
  options: MigrateOptions;
} {
  const rest = typeof args[0] === 'string' ? args.slice(1) : args;
  const [events = {}, options = {}] = rest as [MigratorEvents?, MigrateOptions?];
  return { events, options };
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
  events?: MigratorEvents,
  options?: MigrateOptions,
): Promise<string[]>;
/** @deprecated The URL is not needed: the lock is taken on a connection of the DataSource. */
export async function runPendingMigrations(
  dataSource: DataSource,
  url: string,
  events?: MigratorEvents,
  options?: MigrateOptions,
): Promise<string[]>;
export async function runPendingMigrations(
  dataSource: DataSource,
  ...args: MigratorArguments
): Promise<string[]> {
  validateSettings();
  const { events, options } = migratorArguments(args);
  // Before the lock: a standby grants advisory locks, then fails on the first DDL.
  await assertPrimary(dataSource, 'running migrations');
  return withMigrationLock(
    dataSource,
    async () => {
      const decision = await decideRun(dataSource, options);
      if (decision.preflight) events.preflight?.(decision.preflight);
      await repairIncomplete(dataSource, events, options);
      if (decision.adoption) events.adopting?.(decision.adoption);
      if (decision.adoption && decision.baseline) {
        await adopt(dataSource, decision.adoption, events, options);
      }
      const toRun = await pendingMigrations(dataSource);
      events.pending?.(toRun);
      // One at a time, so that a stop (options.signal) starts nothing after the current one.
      for (const name of toRun) {
        options.signal?.throwIfAborted();
        const executor = new SelectedMigrationsExecutor(dataSource, [name]);
        executor.transaction = 'each';
        await withProgressLogger(dataSource, events, () =>
          retryingLockTimeouts(() => executor.executePendingMigrations(), events, options),
        );
      }
      const left = new Set(await pendingMigrations(dataSource));
      return toRun.filter((name) => !left.has(name));
    },
    events.waiting,
    options.signal,
  );
}

/**
 * LegacySchema's down() drops the five tables. On an adopted database those hold everything the
 * application ever stored, and "roll back the upgrade" ends one step earlier: refuse while any of
 * them has a row.
 */
async function refuseToDropLegacyData(dataSource: DataSource, migration: string): Promise<void> {
  const query = <T>(sql: string, params?: unknown[]): Promise<T[]> => dataSource.query(sql, params);
  const withRows: string[] = [];
  for (const table of await existingLegacyTables(query)) {
    const [row] = await query<{ any: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${quoteIdentifier(table)}) AS any`,
    );
    if (row.any) withRows.push(table);
  }
  if (withRows.length > 0) {
    throw new MigrationRefusedError({
      reason: 'revert-drops-data',
      migration,
      tablesWithRows: withRows,
    });
  }
}

/** Undoes the last applied migration; returns its name, or undefined when none is applied. */
export async function revertLastMigration(
  dataSource: DataSource,
  events?: MigratorEvents,
  options?: MigrateOptions,
): Promise<string | undefined>;
/** @deprecated The URL is not needed: the lock is taken on a connection of the DataSource. */
export async function revertLastMigration(
  dataSource: DataSource,
  url: string,
  events?: MigratorEvents,
  options?: MigrateOptions,
): Promise<string | undefined>;
export async function revertLastMigration(
  dataSource: DataSource,
  ...args: MigratorArguments
): Promise<string | undefined> {
  validateSettings();
  const { events, options } = migratorArguments(args);
  await assertPrimary(dataSource, 'reverting a migration');
  return withMigrationLock(
    dataSource,
    async () => {
      const applied = (await migrationStates(dataSource)).filter((m) => m.applied);
      const last = applied[applied.length - 1];
      if (!last) return undefined;
      if (last.name === adoptingMigration(dataSource)) {
        await refuseToDropLegacyData(dataSource, last.name);
      }
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
    options.signal,
  );
}
