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
  for (const [name, shape] of shapes) {
    shape.primaryKey = { name: `pk_${name}`, columns: ['id'] };
    shape.uniques = []; // SPEC keeps uniqueness in ix_profiles_email alone
  }
  return shapes;
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
const entries = (result: ReturnType<typeof classify>, action: string) =>
  result.entries
    .filter((entry) => entry.action === action && entry.reason !== 'primary-key-renamed')
    .map((entry) => `${entry.reason} ${entry.table}.${entry.object}`);

describe('classifyAdoption', () => {
  it('finds nothing to do on the legacy shape itself but the primary key names', () => {
    const result = classify(clone(legacy));
    expect(result.refusals).toEqual([]);
    expect(result.entries.every((entry) => entry.reason === 'primary-key-renamed')).toBe(true);
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

  it('replaces a foreign key on an entity FK column, leaves one elsewhere, refuses a taken name and an existing new table', () => {
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
    live.set('export_jobs', { ...structuredClone(legacy.get('images')!), name: 'export_jobs' });
    const result = classify(live);
    expect(entries(result, 'convert')).toEqual([
      'foreign-key-replaced projects.projects_user_id_profiles_id_fk',
    ]);
    expect(result.entries.find((e) => e.reason === 'foreign-key-replaced')?.replacement).toBe(
      'fk_projects_user_id',
    );
    expect(entries(result, 'leave')).toEqual([
      'extra-column projects.team_id',
      'extra-foreign-key projects.projects_team_id_teams_id_fk',
      'extra-index projects.ix_profiles_email',
    ]);
    expect(entries(result, 'refuse')).toEqual([
      'name-taken projects.ix_profiles_email',
      'table-exists export_jobs.export_jobs',
    ]);
  });
});
