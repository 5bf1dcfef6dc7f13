import type { DataSource, QueryRunner } from 'typeorm';
import { assertPrimary } from '../connection/server-role';
import { incompleteMigrations } from '../inspect/migration-states';
import { currentSchema, readSchemaCatalog } from '../inspect/schema-catalog';
import type { TableShape } from '../inspect/schema-shape';
import { migrationLockTimeout } from '../migrations/lock-safe-ddl';
import { migrationName, type PixCrawlerMigration } from '../migrations/migration-traits';
import type { AdoptionReport } from '../upgrade/adoption';
import { detectOrigin, type DatabaseOrigin } from '../upgrade/origin';
import { baselineStatements } from '../upgrade/adoption';
import type { PreflightReport } from '../upgrade/preflight';
import {
  adoptingMigration,
  decideRun,
  MigrationRefusedError,
  type MigrateOptions,
  type MigrationRefusal,
} from './migrator';
import { vetRead, type UnrunRead } from './catalog-read-check';
import { statementImpact, type ImpactContext, type LockMode } from './statement-impact';

export type { UnrunRead } from './catalog-read-check';

/**
 * `plan`: what `migrate` (with the same options) would do, statement by statement, without
 * doing any of it. The migrations are not described twice: each pending migration's own up()
 * runs against a query runner that answers its catalog reads from the database, inside one
 * transaction that is rolled back, and records every other statement instead of executing it.
 * So the plan holds exactly what the migrations' code decides, including what a non-transactional migration
 * decides from the catalog (an index already built is skipped, an INVALID one rebuilt), and a
 * migration added later is planned with no change here.
 *
 * On a new database the migrations read what earlier ones create (LegacySchema's tables): the
 * statements that touch only tables the plan itself created are executed too, inside the plan's
 * transaction, which is rolled back (see PlanningSession). Nothing that exists is ever written
 * or locked beyond what reading the catalog takes, and a read of up() runs only when PostgreSQL's
 * own parse of it shows a catalog read that can change nothing (see vetRead); any other is a
 * step marked not run.
 */

export interface PlannedLock {
  table: string;
  mode: LockMode;
  /** pg_class.reltuples; null for a table the plan creates, or one never analysed. */
  rowEstimate: number | null;
  /** pg_table_size; null for a table the plan creates. */
  bytes: number | null;
}

export interface PlanStep {
  statement: string;
  locks: PlannedLock[];
  /** Reads every row of the first locked table. */
  scans: boolean;
  /** Writes the first locked table anew. */
  rewrites: boolean;
  /** A table the statement creates. */
  creates?: string;
  /** The lock_timeout the statement runs under ('0': it waits as long as it takes). */
  lockTimeout: string;
  /** False when statement-impact.ts does not know the statement: the locks are a guess. */
  recognised: boolean;
  /** A read of up() that plan did not run (up() got no rows from it, so what follows may differ). */
  notRun?: UnrunRead;
}

export interface PlannedMigration {
  /** The migration's name, or `baseline` for the adoption's conversions. */
  name: string;
  /** One transaction for all its steps (false: each statement commits alone). */
  transactional: boolean;
  /** Recorded as applied without running (the adopted LegacySchema). */
  recordedOnly: boolean;
  /** Recorded already, but its objects are missing: migrate runs it again to make them. */
  repair?: boolean;
  steps: PlanStep[];
}

export interface MigrationPlan {
  schema: string;
  /** Which tool made the database, as its catalog tells (upgrade/origin.ts). */
  origin: DatabaseOrigin;
  serverVersion: string;
  /** The lock_timeout migration statements run under (PIXCRAWLER_LOCK_TIMEOUT). */
  lockTimeout: string;
  /** Set when migrate would refuse; the steps are then empty (but for broken rows). */
  refusal?: MigrationRefusal;
  adoption?: AdoptionReport;
  preflight?: PreflightReport;
  migrations: PlannedMigration[];
}

/**
 * Builds the plan. Reads only: the catalog is the same before and after (plan.test.ts).
 * StandbyServerError on a standby: a plan is for the server that will run the migrations.
 */
export async function planMigrations(
  dataSource: DataSource,
  options: MigrateOptions = {},
): Promise<MigrationPlan> {
  // A plan is for the server that will run the migrations: a standby never does.
  await assertPrimary(dataSource, 'planning migrations');
  const schema = await currentSchema(dataSource);
  const [{ version }]: { version: string }[] = await dataSource.query(
    `SELECT current_setting('server_version') AS version`,
  );
  const plan: MigrationPlan = {
    schema,
    origin: await detectOrigin(dataSource),
    serverVersion: version,
    lockTimeout: migrationLockTimeout(),
    migrations: [],
  };
  let decision;
  try {
    decision = await decideRun(dataSource, options, { brokenRows: 'report' });
  } catch (error) {
    if (!(error instanceof MigrationRefusedError)) throw error;
    plan.refusal = error.refusal;
    return plan;
  }
  if (decision.adoption) plan.adoption = decision.adoption;
  if (decision.preflight) {
    plan.preflight = decision.preflight;
    if (decision.preflight.broken.length > 0) {
      const constraining = (dataSource.migrations as PixCrawlerMigration[])
        .filter((m) => m.constrainsExistingRows && decision.pending.includes(migrationName(m)))
        .map(migrationName);
      plan.refusal = {
        reason: 'rows-break-constraints',
        migrations: constraining,
        preflight: decision.preflight,
      };
    }
  }

  const live = await readSchemaCatalog(dataSource, schema);
  const serverVersion = Number(
    (
      (await dataSource.query(`SELECT current_setting('server_version_num') AS v`)) as {
        v: string;
      }[]
    )[0].v,
  );
  const session = new PlanningSession(
    dataSource,
    impactContext(live, serverVersion),
    await tableSizes(dataSource, schema),
  );
  await session.open();
  try {
    const adopted = adoptingMigration(dataSource);
    // A recorded migration whose objects are missing: migrate runs it again first.
    for (const incomplete of await incompleteMigrations(dataSource)) {
      const migration = (dataSource.migrations as PixCrawlerMigration[]).find(
        (m) => migrationName(m) === incomplete.name,
      );
      if (!migration || !incomplete.rerunnable) continue;
      const steps = await session.record(false, (runner) => migration.up(runner));
      plan.migrations.push({
        name: incomplete.name,
        transactional: false,
        recordedOnly: false,
        repair: true,
        steps,
      });
    }
    const statements =
      decision.adoption && decision.baseline ? baselineStatements(decision.adoption) : [];
    if (statements.length > 0) {
      const steps = await session.record(true, async (runner) => {
        await runner.query(`SET LOCAL lock_timeout = '${plan.lockTimeout}'`);
        for (const statement of statements) await runner.query(statement);
      });
      plan.migrations.push({ name: 'baseline', transactional: true, recordedOnly: false, steps });
    }
    const migrations = dataSource.migrations as PixCrawlerMigration[];
    for (const name of decision.pending) {
      const migration = migrations.find((m) => migrationName(m) === name)!;
      if (decision.baseline && name === adopted) {
        plan.migrations.push({ name, transactional: true, recordedOnly: true, steps: [] });
        continue;
      }
      const transactional = migration.transaction !== false;
      const steps = await session.record(transactional, (runner) => migration.up(runner));
      plan.migrations.push({ name, transactional, recordedOnly: false, steps });
    }
  } finally {
    await session.close();
  }
  return plan;
}

const READS = /^\s*(SELECT|WITH|SHOW|VALUES)\b/i;
const SHOW = /^\s*SHOW\s+(?:ALL|[a-z_][\w.]*)\s*$/i;
const SETTING = /^\s*(SET|RESET)\b(?:\s+LOCAL)?\s+(\w+)\s*(?:=|TO)?\s*'?([^']*)'?\s*$/i;
const SAVEPOINT = 'pixcrawler_plan_read';

/** What up() gets from a statement plan does not run: no rows. */
const noRows = (structured?: boolean) => (structured ? { records: [], raw: [], affected: 0 } : []);

/**
 * One connection and one transaction for the whole plan, rolled back at the end. The
 * migrations' own up() runs against a query runner that:
 * - runs reads (their catalog lookups decide as they would in migrate), but only those PostgreSQL
 *   shows to be catalog reads that can change nothing (vetRead), each in a READ ONLY savepoint
 *   rolled back after it; any other read is recorded as a step marked not run, and up() gets no
 *   rows from it;
 * - follows SET and RESET (time zone, lock_timeout) without executing them;
 * - records every other statement as a plan step, and executes it too only when it touches
 *   nothing but tables this plan created (a new database: LegacySchema's tables, which the
 *   next migrations then find; CONCURRENTLY dropped, as it cannot run in a transaction). A
 *   statement that names an existing table is never executed, so it takes no lock.
 */
class PlanningSession {
  private readonly runner: QueryRunner;
  /** Tables created (in this rolled-back transaction) by executed statements. */
  private readonly materialised = new Set<string>();
  /** Tables the plan creates, executed or not: they have no rows to report. */
  private readonly created = new Set<string>();
  /** vetRead's answers by text. */
  private readonly vetted = new Map<string, UnrunRead | undefined>();
  private timezone = 'UTC';
  private lockTimeout = migrationLockTimeout();

  constructor(
    dataSource: DataSource,
    private readonly context: ImpactContext,
    private readonly sizes: Map<string, { rows: number | null; bytes: number }>,
  ) {
    this.runner = dataSource.createQueryRunner();
  }

  async open(): Promise<void> {
    await this.runner.connect();
    const [{ zone }]: { zone: string }[] = await this.runner.query(
      `SELECT current_setting('TimeZone') AS zone`,
    );
    this.timezone = zone;
    await this.runner.query('BEGIN');
    // Nothing here waits on another session: a statement that would is a bug, not a wait.
    await this.runner.query(`SET LOCAL lock_timeout = '1s'`);
  }

  async close(): Promise<void> {
    try {
      await this.runner.query('ROLLBACK');
    } finally {
      await this.runner.release();
    }
  }

  /** Runs one migration's work against the recording runner; returns its steps. */
  async record(
    transactional: boolean,
    work: (runner: QueryRunner) => Promise<void>,
  ): Promise<PlanStep[]> {
    const steps: PlanStep[] = [];
    const defaults = { timezone: this.timezone, lockTimeout: migrationLockTimeout() };
    this.lockTimeout = defaults.lockTimeout;
    let inTransaction = transactional;
    const recording = new Proxy(this.runner, {
      get: (target, property, receiver) => {
        if (property === 'query') {
          return async (sql: string, parameters?: unknown[], structured?: boolean) => {
            if (READS.test(sql)) {
              const read = await this.read(sql, parameters, structured);
              if ('result' in read) return read.result;
              steps.push(this.unrun(sql.trim(), read.notRun));
              return noRows(structured);
            }
            const setting = SETTING.exec(sql);
            if (setting) {
              const [, verb, name, value] = setting;
              const reset = verb.toUpperCase() === 'RESET';
              if (name.toLowerCase() === 'timezone') {
                this.timezone = reset ? defaults.timezone : value;
              }
              if (name.toLowerCase() === 'lock_timeout') {
                this.lockTimeout = reset ? defaults.lockTimeout : value;
              }
            } else {
              steps.push(await this.step(sql.trim()));
            }
            return noRows(structured);
          };
        }
        if (property === 'isTransactionActive') return inTransaction;
        if (property === 'startTransaction') {
          return async () => {
            inTransaction = true;
          };
        }
        if (property === 'commitTransaction' || property === 'rollbackTransaction') {
          return async () => {
            inTransaction = false;
          };
        }
        if (property === 'release') return async () => undefined;
        return Reflect.get(target, property, receiver) as unknown;
      },
    });
    await work(recording);
    return steps;
  }

  /**
   * One read of up(), run when vetRead passes it, in a savepoint that is READ ONLY and rolled
   * back after it: what the check could miss still cannot write, nextval or setval, and a
   * pg_notify in it is never sent. (Session advisory locks outlive a rollback: vetRead is what
   * keeps them out.)
   */
  private async read(
    sql: string,
    parameters: unknown[] | undefined,
    structured: boolean | undefined,
  ): Promise<{ result: unknown } | { notRun: UnrunRead }> {
    const text = sql.trim().replace(/;$/, '');
    const refused = SHOW.test(text) ? undefined : await this.vet(text);
    if (refused) return { notRun: refused };
    await this.runner.query(`SAVEPOINT ${SAVEPOINT}; SET LOCAL transaction_read_only = on`);
    try {
      return {
        result: structured
          ? await this.runner.query(text, parameters, true)
          : await this.runner.query(text, parameters),
      };
    } catch (error) {
      // read_only_sql_transaction: it tried to write after all.
      if ((error as { driverError?: { code?: string } }).driverError?.code !== '25006') throw error;
      return { notRun: { reason: 'changes', detail: (error as Error).message } };
    } finally {
      await this.runner.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`);
    }
  }

  /** vetRead's answer, once per text until the plan creates a table (a name may then mean it). */
  private async vet(text: string): Promise<UnrunRead | undefined> {
    // One statement only: a ';' could end the vetted one and start another.
    if (text.includes(';')) {
      return { reason: 'unchecked', detail: 'it holds a ";" (more than one statement?)' };
    }
    if (!this.vetted.has(text)) {
      await this.runner.query(`SAVEPOINT ${SAVEPOINT}`);
      try {
        this.vetted.set(text, await vetRead(this.runner, text));
      } finally {
        await this.runner.query(
          `ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`,
        );
      }
    }
    return this.vetted.get(text);
  }

  private unrun(statement: string, notRun: UnrunRead): PlanStep {
    return {
      statement,
      locks: [],
      scans: false,
      rewrites: false,
      lockTimeout: this.lockTimeout,
      recognised: false,
      notRun,
    };
  }

  private async step(statement: string): Promise<PlanStep> {
    const impact = statementImpact(statement, { ...this.context, timezone: this.timezone });
    learn(this.context, statement);
    const touched = [...impact.locks.map((lock) => lock.table)];
    const executable =
      impact.recognised &&
      (impact.creates !== undefined || touched.length > 0) &&
      touched.every((table) => this.materialised.has(table)) &&
      (impact.creates === undefined || !this.sizes.has(impact.creates));
    if (executable) {
      await this.runner.query(statement.replace(/\bINDEX CONCURRENTLY\b/i, 'INDEX'));
      if (impact.creates) {
        this.materialised.add(impact.creates);
        this.vetted.clear();
      }
    }
    const lockOf = (table: string, mode: LockMode): PlannedLock => ({
      table,
      mode,
      rowEstimate: this.created.has(table) ? null : (this.sizes.get(table)?.rows ?? null),
      bytes: this.created.has(table) ? null : (this.sizes.get(table)?.bytes ?? null),
    });
    if (impact.creates) this.created.add(impact.creates);
    return {
      statement,
      locks: impact.locks.map(({ table, mode }) => lockOf(table, mode)),
      scans: impact.scans,
      rewrites: impact.rewrites,
      ...(impact.creates ? { creates: impact.creates } : {}),
      lockTimeout: this.lockTimeout,
      recognised: impact.recognised,
    };
  }
}

async function tableSizes(
  dataSource: DataSource,
  schema: string,
): Promise<Map<string, { rows: number | null; bytes: number }>> {
  const rows: { name: string; rows: string; bytes: string }[] = await dataSource.query(
    `SELECT c.relname AS name, c.reltuples::bigint AS rows, pg_table_size(c.oid) AS bytes
       FROM pg_class c
      WHERE c.relnamespace = to_regnamespace($1) AND c.relkind IN ('r', 'p')`,
    [schema],
  );
  return new Map(
    rows.map((row) => [
      row.name,
      { rows: Number(row.rows) < 0 ? null : Number(row.rows), bytes: Number(row.bytes) },
    ]),
  );
}

function impactContext(live: Map<string, TableShape>, serverVersion: number): ImpactContext {
  const context: ImpactContext = {
    foreignKeys: new Map(),
    indexes: new Map(),
    references: new Map(),
    timezone: 'UTC',
    serverVersion,
  };
  for (const table of live.values()) {
    for (const fk of table.foreignKeys) {
      context.foreignKeys.set(fk.name, { table: table.name, referencedTable: fk.referencedTable });
    }
    for (const index of table.indexes) context.indexes.set(index.name, table.name);
    // Unique constraints and primary keys have indexes of their own name too.
    for (const unique of table.uniques) context.indexes.set(unique.name, table.name);
    context.references.set(
      table.name,
      table.foreignKeys.map((fk) => fk.referencedTable),
    );
  }
  return context;
}

const NAME = String.raw`"((?:[^"]|"")+)"`;

/** What a planned statement creates that later statements name: foreign keys and indexes. */
function learn(context: ImpactContext, statement: string): void {
  const sql = statement.replace(/\s+/g, ' ');
  const table = new RegExp(`^(?:CREATE TABLE|ALTER TABLE) (?:IF NOT EXISTS )?${NAME}`, 'i').exec(
    sql,
  )?.[1];
  if (table) {
    for (const match of sql.matchAll(
      new RegExp(`CONSTRAINT ${NAME} FOREIGN KEY \\([^)]*\\) REFERENCES ${NAME}`, 'gi'),
    )) {
      context.foreignKeys.set(match[1], { table, referencedTable: match[2] });
      context.references.set(table, [...(context.references.get(table) ?? []), match[2]]);
    }
  }
  const index = new RegExp(
    `^CREATE (?:UNIQUE )?INDEX (?:CONCURRENTLY )?(?:IF NOT EXISTS )?${NAME} ON ${NAME}`,
    'i',
  ).exec(sql);
  if (index) context.indexes.set(index[1], index[2]);
  const usingIndex = new RegExp(
    `^ALTER TABLE ${NAME} ADD CONSTRAINT ${NAME} UNIQUE USING INDEX`,
    'i',
  ).exec(sql);
  if (usingIndex) context.indexes.set(usingIndex[2], usingIndex[1]);
  const renamedIndex = new RegExp(`^ALTER INDEX ${NAME} RENAME TO ${NAME}`, 'i').exec(sql);
  const indexTable = renamedIndex && context.indexes.get(renamedIndex[1]);
  if (renamedIndex && indexTable) context.indexes.set(renamedIndex[2], indexTable);
  const renamedConstraint = new RegExp(
    `^ALTER TABLE ${NAME} RENAME CONSTRAINT ${NAME} TO ${NAME}`,
    'i',
  ).exec(sql);
  const fk = renamedConstraint && context.foreignKeys.get(renamedConstraint[2]);
  if (renamedConstraint && fk) context.foreignKeys.set(renamedConstraint[3], fk);
}
