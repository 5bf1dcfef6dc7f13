import { normalizeDefault, type TableShape } from '../../src/inspect/schema-shape';
import { compareSchemas } from '../../src/inspect/schema-compare';
import { verifyFindings } from '../../src/inspect/schema-verifier';
import { textTable } from '../../src/cli/text-table';

describe('normalizeDefault', () => {
  it.each([
    [`'pending'::character varying`, 'character varying(20)', `'pending'`],
    [`'user'::text`, 'text', `'user'`],
    [`'it''s'::character varying`, 'character varying(20)', `'it''s'`],
    ['now()', 'timestamp with time zone', 'now()'],
    ['CURRENT_TIMESTAMP', 'timestamp with time zone', 'now()'],
    [`nextval('projects_id_seq'::regclass)`, 'integer', 'nextval(sequence)'],
    [`nextval('"Odd Name_seq"'::regclass)`, 'integer', 'nextval(sequence)'],
    [`'[]'::jsonb`, 'jsonb', `'[]'`],
    [`'{"a": 1}'::jsonb`, 'jsonb', `'{"a":1}'`],
    ['0', 'integer', '0'],
    [`'0'::integer`, 'integer', '0'],
    ['(-1)', 'integer', '-1'],
  ])('reads %s on a %s column as %s', (raw, type, expected) => {
    expect(normalizeDefault(raw, type)).toBe(expected);
  });

  it('reads a missing default as null', () => {
    expect(normalizeDefault(null)).toBeNull();
    expect(normalizeDefault(undefined)).toBeNull();
  });

  it('keeps an expression that is not one literal as it is', () => {
    expect(normalizeDefault('(a) + (b)', 'integer')).toBe('(a) + (b)');
  });
});

const table = (overrides: Partial<TableShape> = {}): TableShape => ({
  name: 'projects',
  columns: [{ name: 'id', type: 'integer', nullable: false, default: 'nextval(sequence)' }],
  primaryKey: { name: 'pk_projects', columns: ['id'] },
  foreignKeys: [],
  indexes: [
    {
      name: 'ix_project_user_id',
      columns: ['user_id'],
      unique: false,
      method: 'btree',
      where: null,
    },
  ],
  uniques: [],
  checks: [],
  ...overrides,
});

describe('verify findings from the comparer', () => {
  it('finds nothing when the two schemas are the same', () => {
    expect(
      verifyFindings(new Map([['projects', table()]]), new Map([['projects', table()]])),
    ).toEqual([]);
  });

  it('names an index whose columns are in another order as an error', () => {
    const expected = table({
      indexes: [
        {
          name: 'ix',
          columns: ['project_id', 'status'],
          unique: false,
          method: 'btree',
          where: null,
        },
      ],
    });
    const actual = table({
      indexes: [
        {
          name: 'ix',
          columns: ['status', 'project_id'],
          unique: false,
          method: 'btree',
          where: null,
        },
      ],
    });
    expect(
      verifyFindings(new Map([['projects', expected]]), new Map([['projects', actual]])),
    ).toEqual([
      {
        severity: 'error',
        table: 'projects',
        kind: 'index',
        name: 'ix',
        message: 'is on (status, project_id), expected on (project_id, status)',
      },
    ]);
  });

  it('points at a differently named index on the same columns when the expected one is missing', () => {
    const actual = table({
      indexes: [
        {
          name: 'projects_user_id_idx',
          columns: ['user_id'],
          unique: false,
          method: 'btree',
          where: null,
        },
      ],
    });
    const findings = verifyFindings(
      new Map([['projects', table()]]),
      new Map([['projects', actual]]),
    );
    expect(findings.map((f) => `${f.severity} ${f.name}: ${f.message}`)).toEqual([
      'error ix_project_user_id: missing (expected on (user_id)); an index on the same columns exists as projects_user_id_idx',
      'warning projects_user_id_idx: not in the entities (left alone): on (user_id)',
    ]);
  });

  it('ignores the tables it is told to, and warns about any other table it does not know', () => {
    const actual = new Map([
      ['projects', table()],
      ['migrations', table({ name: 'migrations' })],
      ['legacy', table({ name: 'legacy' })],
    ]);
    const findings = verifyFindings(new Map([['projects', table()]]), actual, {
      ignoredTables: ['migrations'],
    });
    expect(findings.map((f) => `${f.severity} ${f.kind} ${f.name}`)).toEqual([
      'warning table legacy',
    ]);
  });
});

describe('textTable', () => {
  it('aligns text left and numbers and sizes right, under a rule', () => {
    expect(
      textTable(
        ['table', 'rows', 'size'],
        [
          ['images', 12000, '1024 kB'],
          ['profiles', 3, '8192 bytes'],
        ],
      ).split('\n'),
    ).toEqual([
      'table      rows        size',
      '--------  -----  ----------',
      'images    12000     1024 kB',
      'profiles      3  8192 bytes',
    ]);
  });
});

describe('the comparer (typed differences)', () => {
  const fk = (name: string, onDelete: 'CASCADE' | 'NO ACTION') => ({
    name,
    columns: ['user_id'],
    referencedTable: 'profiles',
    referencedColumns: ['id'],
    onDelete,
    onUpdate: 'NO ACTION' as const,
  });

  it('calls a foreign key beside the expected one on the same columns "other", and one elsewhere "extra"', () => {
    const expected = table({ foreignKeys: [fk('fk_projects_user_id', 'CASCADE')] });
    const live = table({
      foreignKeys: [
        fk('fk_projects_user_id', 'CASCADE'),
        fk('projects_user_id_profiles_id_fk', 'NO ACTION'),
        { ...fk('projects_team_id_teams_id_fk', 'NO ACTION'), columns: ['team_id'] },
      ],
    });
    const differences = compareSchemas(
      new Map([['projects', expected]]),
      new Map([['projects', live]]),
    );
    expect(differences.map((d) => `${d.kind} ${d.name} ${d.problem}`)).toEqual([
      'foreign key projects_user_id_profiles_id_fk other',
      'foreign key projects_team_id_teams_id_fk extra',
    ]);
    expect(
      verifyFindings(new Map([['projects', expected]]), new Map([['projects', live]])).map(
        (f) => `${f.severity} ${f.name}`,
      ),
    ).toEqual(['error projects_user_id_profiles_id_fk', 'warning projects_team_id_teams_id_fk']);
  });

  it('leaves defaults and primary key names out when told to (the legacy shape does not fix them)', () => {
    const expected = table();
    const live = table({
      columns: [{ name: 'id', type: 'integer', nullable: false, default: null }],
      primaryKey: { name: 'projects_pkey', columns: ['id'] },
    });
    const all = compareSchemas(new Map([['projects', expected]]), new Map([['projects', live]]));
    expect(all.map((d) => `${d.kind} ${d.problem}`)).toEqual([
      'column default',
      'primary key name',
    ]);
    expect(
      compareSchemas(new Map([['projects', expected]]), new Map([['projects', live]]), {
        defaults: false,
        primaryKeyName: false,
      }),
    ).toEqual([]);
  });
});
