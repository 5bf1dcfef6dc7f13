import { DataSource } from 'typeorm';
import { buildLegacyDatabase } from '../../src/testing/legacy-builder';
import { LEGACY_TABLE_NAMES } from '../../src/upgrade/legacy-schema';
import { checkAdoption } from '../../src/upgrade/adoption';
import { runCli } from '../helpers/cli';
import { revertLastMigration, runPendingMigrations } from '../../src/migrator/migrator';
import { refusalOf } from '../helpers/refusal';
import { preflightRules, runPreflight } from '../../src/upgrade/preflight';
import { schemaDrift } from '../../src/inspect/schema-drift';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { migrations } from '../../src/migrations';
import {
  EXISTING_TABLE_CONSTRAINTS,
  JOB_TABLE_CONSTRAINTS,
} from '../../src/migrations/1731542400001-JobTablesAndConstraints';
import {
  invalidIndexes,
  notValidConstraints,
  recordedMigrations,
  rowIds,
  schemaSnapshot,
} from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

const ALL = migrations.map((m) => new m().name!);

describe('adopting an existing database with migrate --baseline', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let legacySnapshot: string[];

  beforeAll(async () => {
    db = await createTestDatabase('baseline');
    await buildLegacyDatabase(db.url, { images: 20_000 });
    legacySnapshot = await schemaSnapshot(db);
    dataSource = await db.connect();
  });
  afterAll(() => db.drop());

  it('migrate without --baseline refuses a legacy database, says --baseline is the way, and changes nothing', async () => {
    const before = await schemaSnapshot(db);
    const { error, message } = await refusalOf(runPendingMigrations(dataSource));
    expect(error.refusal).toEqual({
      reason: 'adoption-required',
      migration: ALL[0],
      existingTables: [...LEGACY_TABLE_NAMES].sort(),
      origin: { kind: 'legacy' },
    });
    expect(message).toMatch(/--baseline/);
    expect(await schemaSnapshot(db)).toEqual(before);
    expect(await recordedMigrations(db)).toEqual([]);
  });

  it('upgrades a legacy database with data: preflight clean, then no drift, no invalid index, no NOT VALID constraint and every row kept', async () => {
    expect((await runPreflight(dataSource)).broken).toEqual([]);
    const before = await rowIds(db, LEGACY_TABLE_NAMES);
    const baselined: string[] = [];

    const applied = await runPendingMigrations(
      dataSource,
      { baselined: (name) => baselined.push(name) },
      { baseline: true },
    );

    expect(baselined).toEqual([ALL[0]]);
    expect(applied).toEqual(ALL.slice(1));
    expect(await recordedMigrations(db)).toEqual(ALL);
    expect(await schemaDrift(dataSource)).toEqual([]);
    expect(await invalidIndexes(db)).toEqual([]);
    expect(await notValidConstraints(db)).toEqual([]);
    expect(await rowIds(db, LEGACY_TABLE_NAMES)).toEqual(before);
  });

  it('--baseline on an adopted database finds nothing pending', async () => {
    expect(await runPendingMigrations(dataSource, {}, { baseline: true })).toEqual([]);
  });

  it('reverting the upgrade brings back the legacy schema exactly, and never drops the legacy tables with their rows', async () => {
    const rows = await rowIds(db, LEGACY_TABLE_NAMES);
    for (let i = 0; i < ALL.length - 1; i++) await revertLastMigration(dataSource);
    expect(await recordedMigrations(db)).toEqual([ALL[0]]);
    expect(await schemaSnapshot(db)).toEqual(legacySnapshot);
    expect(await rowIds(db, LEGACY_TABLE_NAMES)).toEqual(rows);

    const { error, message } = await refusalOf(revertLastMigration(dataSource));
    expect(error.refusal).toMatchObject({ reason: 'revert-drops-data', migration: ALL[0] });
    expect(message).toMatch(/hold data/);
    expect(await recordedMigrations(db)).toEqual([ALL[0]]);
    expect(await rowIds(db, LEGACY_TABLE_NAMES)).toEqual(rows);
  });
});

describe('the legacy schema check', () => {
  let db: TestDatabase;
  let dataSource: DataSource;

  beforeEach(async () => {
    db = await createTestDatabase('legacy_check');
  });
  afterEach(async () => {
    if (dataSource?.isInitialized) await dataSource.destroy();
    await db.drop();
  });

  it('--baseline refuses tables that differ, names every mismatch, and changes nothing', async () => {
    await buildLegacyDatabase(db.url, { images: 100 });
    await db.query('ALTER TABLE images ALTER COLUMN width TYPE bigint');
    await db.query('ALTER TABLE profiles ALTER COLUMN full_name SET NOT NULL');
    await db.query('ALTER TABLE crawl_jobs DROP COLUMN task_ids');
    await db.query('ALTER TABLE activity_logs ADD COLUMN legacy_note text'); // extra: allowed
    const before = await schemaSnapshot(db);
    dataSource = await db.connect();

    const { error, message } = await refusalOf(
      runPendingMigrations(dataSource, {}, { baseline: true }),
    );
    expect(error.reason).toBe('legacy-shape-mismatch');
    const refusal = error.refusal.reason === 'legacy-shape-mismatch' ? error.refusal : undefined;
    expect(
      refusal?.adoption.refusals.map((entry) => `${entry.reason} ${entry.table}.${entry.object}`),
    ).toEqual([
      'column-nullability profiles.full_name',
      'column-missing crawl_jobs.task_ids',
      'column-type images.width',
    ]);
    expect(message).toContain('images.width: type is bigint, expected integer');
    expect(message).toContain('profiles.full_name: is NOT NULL, expected nullable');
    expect(message).toContain('crawl_jobs.task_ids: column is missing');
    // Every difference is reported: the extra column as left alone.
    expect(message).toMatch(/Left alone:\n.*activity_logs\.legacy_note text/);
    expect(await schemaSnapshot(db)).toEqual(before);
    expect(await recordedMigrations(db)).toEqual([]);

    // The CLI says the same and exits 1.
    const { code, output } = await runCli(['migrate', '--baseline'], db.url);
    expect(code).toBe(1);
    expect(output).toContain('images.width: type is bigint, expected integer');
    expect(output).toContain('Nothing was changed.');
    expect(await schemaSnapshot(db)).toEqual(before);
    expect(await recordedMigrations(db)).toEqual([]);
  });

  it('--baseline refuses an empty database: there is nothing to adopt', async () => {
    dataSource = await db.connect();
    const { error, message } = await refusalOf(
      runPendingMigrations(dataSource, {}, { baseline: true }),
    );
    expect(error.reason).toBe('nothing-to-adopt');
    expect(message).toMatch(/none of its tables/);
    expect(await recordedMigrations(db)).toEqual([]);
  });

  it('the LegacySchema migration creates exactly the tables legacy-schema.ts describes', async () => {
    dataSource = new DataSource(
      dataSourceOptions({ url: db.url, migrations: migrations.slice(0, 1) }),
    );
    await dataSource.initialize();
    await dataSource.runMigrations();
    const adoption = await checkAdoption(dataSource);
    // Only what JobTablesAndConstraints does anyway: the primary keys get their pk_ names.
    expect(
      adoption.entries.map((entry) => `${entry.action} ${entry.reason} ${entry.table}`),
    ).toEqual([
      // The unique index ix_profiles_email takes over from the legacy unique constraint.
      'convert unique-replaced-by-index profiles',
      ...LEGACY_TABLE_NAMES.map((table) => `convert primary-key-renamed ${table}`),
    ]);
    expect(adoption.conversions).toEqual([]);
  });

  it('preflight checks, from the entities, exactly the constraints the migrations add to tables that may exist', async () => {
    dataSource = await db.connect();
    const fromEntities = preflightRules(dataSource)
      .filter((rule) => rule.kind !== 'unique')
      .map((rule) => rule.name)
      .sort();
    // The five legacy tables', and the job tables' (a database Alembic built has them, with rows).
    expect(fromEntities).toEqual(
      [...EXISTING_TABLE_CONSTRAINTS, ...JOB_TABLE_CONSTRAINTS].map((c) => c.name).sort(),
    );
  });
});
