import type { TableShape } from '../../src/inspect/schema-shape';
import { classifyAdoption, type ClassifyInput } from '../../src/upgrade/adoption';
import { legacyShape } from '../../src/upgrade/legacy-schema';

/** The classification on shapes alone: what adoption converts, leaves and refuses. */

const legacy = legacyShape();
const clone = (shapes: Map<string, TableShape>) =>
  new Map([...shapes].map(([name, shape]) => [name, structuredClone(shape)]));

/** The target: the legacy tables with SPEC's foreign key on projects.user_id and the email index. */
function target(): Map<string, TableShape> {
  const shapes = clone(legacy);
  shapes.get('projects')!.foreignKeys.push({
    name: 'fk_projects_user_id',
    columns: ['user_id'],
    referencedTable: 'profiles',
    referencedColumns: ['id'],
    onDelete: 'CASCADE',
    onUpdate: 'NO ACTION',
  });
  shapes.get('profiles')!.indexes.push({
    name: 'ix_profiles_email',
    columns: ['email'],
    unique: true,
    method: 'btree',
    where: null,
  });
  // A job table, as the entities have it (its columns; the rest is compared by name).
  shapes.set('export_jobs', {
    name: 'export_jobs',
    columns: [
      { name: 'id', type: 'integer', nullable: false, default: 'nextval(sequence)' },
      { name: 'crawl_job_id', type: 'integer', nullable: false, default: null },
      { name: 'file_size', type: 'bigint', nullable: true, default: null },
    ],
    primaryKey: null,
    foreignKeys: [
      {
        name: 'fk_export_jobs_crawl_job_id',
        columns: ['crawl_job_id'],
        referencedTable: 'crawl_jobs',
        referencedColumns: ['id'],
        onDelete: 'CASCADE',
        onUpdate: 'NO ACTION',
      },
    ],
    indexes: [
      {
        name: 'ix_export_job_crawl_job_id',
        columns: ['crawl_job_id'],
        unique: false,
        method: 'btree',
        where: null,
      },
    ],
    uniques: [],
    checks: [],
  });
  for (const [name, shape] of shapes) {
    shape.primaryKey = { name: `pk_${name}`, columns: ['id'] };
    shape.uniques = []; // SPEC keeps uniqueness in ix_profiles_email alone
  }
  return shapes;
}

/** export_jobs as PixCrawler's Alembic 001 made it: file_size integer, default key names. */
function alembicExportJobs(): TableShape {
  const shape = structuredClone(target().get('export_jobs')!);
  shape.columns.find((c) => c.name === 'file_size')!.type = 'integer';
  shape.primaryKey = { name: 'export_jobs_pkey', columns: ['id'] };
  shape.foreignKeys[0].name = 'export_jobs_crawl_job_id_fkey';
  return shape;
}

const classify = (live: Map<string, TableShape>, overrides: Partial<ClassifyInput> = {}) =>
  classifyAdoption({
    legacy,
    target: target(),
    live,
    timezone: 'UTC',
    timezoneKnown: true,
    serverVersion: 150000,
    allowRewrite: false,
    ...overrides,
  });
/** What every legacy database gets: primary keys renamed, profiles_email_key replaced. */
const ALWAYS = new Set(['primary-key-renamed', 'unique-replaced-by-index']);
const entries = (result: ReturnType<typeof classify>, action: string) =>
  result.entries
    .filter((entry) => entry.action === action && !ALWAYS.has(entry.reason))
    .map((entry) => `${entry.reason} ${entry.table}.${entry.object}`);

describe('classifyAdoption', () => {
  it('finds nothing to do on the legacy shape itself but the key names and the email index', () => {
    const result = classify(clone(legacy));
    expect(result.refusals).toEqual([]);
    expect(result.entries.every((entry) => ALWAYS.has(entry.reason))).toBe(true);
    expect(
      result.entries.find((entry) => entry.reason === 'unique-replaced-by-index'),
    ).toMatchObject({
      table: 'profiles',
      object: 'profiles_email_key',
      replacement: 'ix_profiles_email',
    });
    expect(result.conversions).toEqual([]);
  });

  it('converts a timestamp without time zone, catalog-only under UTC on PostgreSQL 12+', () => {
    const live = clone(legacy);
    live.get('profiles')!.columns.find((c) => c.name === 'created_at')!.type =
      'timestamp without time zone';
    expect(entries(classify(live), 'convert')).toEqual([
      'timestamp-without-time-zone profiles.created_at',
    ]);
    expect(classify(live).conversions).toEqual([
      { table: 'profiles', columns: ['created_at'], timezone: 'UTC', rewrites: false },
    ]);
    expect(
      classify(live, { serverVersion: 110000, allowRewrite: true }).conversions[0].rewrites,
    ).toBe(true);
  });

  it('refuses a rewriting conversion unless allowed, and a zone the server does not know', () => {
    const live = clone(legacy);
    live.get('images')!.columns.find((c) => c.name === 'width')!.type = 'bigint';
    live.get('activity_logs')!.columns.find((c) => c.name === 'timestamp')!.type =
      'timestamp without time zone';
    expect(entries(classify(live, { timezone: 'Europe/Berlin' }), 'refuse')).toEqual([
      'column-type images.width',
      'rewrite-not-allowed activity_logs.timestamp',
    ]);
    expect(
      entries(classify(live, { timezone: 'Mars/Olympus', timezoneKnown: false }), 'refuse'),
    ).toContain('unknown-timezone activity_logs.Mars/Olympus');
  });

  it('replaces a foreign key on an entity FK column, leaves one elsewhere, refuses a taken name and a job table of another shape', () => {
    const live = clone(legacy);
    const projects = live.get('projects')!;
    projects.columns.push({ name: 'team_id', type: 'integer', nullable: true, default: null });
    projects.foreignKeys.push(
      {
        name: 'projects_user_id_profiles_id_fk',
        columns: ['user_id'],
        referencedTable: 'profiles',
        referencedColumns: ['id'],
        onDelete: 'NO ACTION',
        onUpdate: 'NO ACTION',
      },
      {
        name: 'projects_team_id_teams_id_fk',
        columns: ['team_id'],
        referencedTable: 'teams',
        referencedColumns: ['id'],
        onDelete: 'SET NULL',
        onUpdate: 'NO ACTION',
      },
    );
    projects.indexes.push({
      name: 'ix_profiles_email',
      columns: ['name'],
      unique: false,
      method: 'btree',
      where: null,
    });
    const images = structuredClone(legacy.get('images')!);
    images.columns = images.columns.filter((c) => c.name !== 'file_size');
    live.set('export_jobs', { ...images, name: 'export_jobs' });
    const result = classify(live);
    expect(entries(result, 'convert')).toEqual([
      'foreign-key-replaced projects.projects_user_id_profiles_id_fk',
      'table-adopted export_jobs.export_jobs',
    ]);
    expect(result.entries.find((e) => e.reason === 'foreign-key-replaced')?.replacement).toBe(
      'fk_projects_user_id',
    );
    expect(entries(result, 'leave').filter((e) => !e.includes('export_jobs'))).toEqual([
      'extra-column projects.team_id',
      'extra-foreign-key projects.projects_team_id_teams_id_fk',
    ]);
    expect(entries(result, 'refuse')).toEqual([
      'column-missing export_jobs.file_size',
      'name-taken projects.ix_profiles_email',
    ]);
  });

  it("adopts Alembic 001's shape: SPEC names kept, SPEC definitions renamed, metadata_ renamed, file_size widened under the limit", () => {
    const live = clone(legacy);
    live.set('export_jobs', alembicExportJobs());
    const logs = live.get('activity_logs')!;
    logs.columns.find((c) => c.name === 'metadata')!.name = 'metadata_';
    live.get('projects')!.foreignKeys.push({
      name: 'projects_user_id_fkey',
      columns: ['user_id'],
      referencedTable: 'profiles',
      referencedColumns: ['id'],
      onDelete: 'CASCADE',
      onUpdate: 'NO ACTION',
    });
    live.get('profiles')!.indexes.push({
      name: 'ix_profiles_email',
      columns: ['email'],
      unique: false,
      method: 'btree',
      where: null,
    });
    live.get('export_jobs')!.indexes.push({
      name: 'ix_export_jobs_crawl',
      columns: ['crawl_job_id'],
      unique: false,
      method: 'btree',
      where: null,
    });
    const formerNames = new Map([['activity_logs.metadata', ['metadata_']]]);
    const small = new Map([['export_jobs', { rows: 10, bytes: 8192 }]]);
    const result = classify(live, { formerNames, sizes: small });
    expect(result.refusals).toEqual([]);
    expect(entries(result, 'keep')).toEqual([
      'matches-spec export_jobs.ix_export_job_crawl_job_id',
    ]);
    expect(entries(result, 'convert').sort()).toEqual([
      'column-renamed activity_logs.metadata_',
      'column-widened export_jobs.file_size',
      'foreign-key-renamed export_jobs.export_jobs_crawl_job_id_fkey',
      'foreign-key-renamed projects.projects_user_id_fkey',
      'index-made-unique profiles.ix_profiles_email',
      'table-adopted export_jobs.export_jobs',
    ]);
    expect(entries(result, 'leave')).toEqual(['extra-index export_jobs.ix_export_jobs_crawl']);
    expect(result.entries.find((e) => e.object === 'ix_export_jobs_crawl')?.coveredBy).toBe(
      'ix_export_job_crawl_job_id',
    );
    expect(result.renames).toEqual([{ table: 'activity_logs', from: 'metadata_', to: 'metadata' }]);
    expect(result.widenings).toMatchObject([
      { table: 'export_jobs', column: 'file_size', to: 'bigint' },
    ]);

    // Over the rewrite limit, the widening is refused unless the operator allows it.
    const big = new Map([['export_jobs', { rows: 2_000_000, bytes: 300 * 2 ** 20 }]]);
    expect(entries(classify(live, { formerNames, sizes: big }), 'refuse')).toEqual([
      'rewrite-over-limit export_jobs.file_size',
    ]);
    expect(classify(live, { formerNames, sizes: big, allowRewrite: true }).refusals).toEqual([]);
    expect(
      entries(
        classify(live, { formerNames, sizes: small, rewriteLimit: { rows: 5, bytes: 2 ** 30 } }),
        'refuse',
      ),
    ).toEqual(['rewrite-over-limit export_jobs.file_size']);
  });

  it('refuses a SPEC name on an object of another definition, and a former-name column of another type', () => {
    const live = clone(legacy);
    live.get('projects')!.foreignKeys.push({
      name: 'fk_projects_user_id',
      columns: ['user_id'],
      referencedTable: 'profiles',
      referencedColumns: ['id'],
      onDelete: 'NO ACTION',
      onUpdate: 'NO ACTION',
    });
    const logs = live.get('activity_logs')!;
    const metadata = logs.columns.find((c) => c.name === 'metadata')!;
    metadata.name = 'metadata_';
    metadata.type = 'text';
    const formerNames = new Map([['activity_logs.metadata', ['metadata_']]]);
    expect(entries(classify(live, { formerNames }), 'refuse')).toEqual([
      'column-missing activity_logs.metadata',
      'name-taken projects.fk_projects_user_id',
    ]);
  });
});
