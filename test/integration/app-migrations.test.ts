import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expectExit, runCli } from '../helpers/cli';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { migrations } from '../../src/migrations';

/**
 * An application with migrations of its own, in both patterns docs/library.md describes, driven
 * end to end by TypeORM's CLI and pixcrawler-db in turn on the same database:
 * - one stream: the app's DataSource lists the package's migrations and entities beside its own,
 *   one migrations table; pixcrawler-db is given that DataSource with `-d`;
 * - two streams: the app's DataSource keeps its migrations in a table of its own, and
 *   pixcrawler-db runs the package's with its own options (DATABASE_URL).
 */
const ROOT = path.resolve(__dirname, '../..');
const TYPEORM_CLI = path.join(ROOT, 'node_modules', '.bin', 'typeorm-ts-node-commonjs');
const PACKAGE = migrations.map((m) => new m().name!);
// The package as the app's DataSource file imports it: the same code the CLI processes run (the
// run's compiled copy, test/helpers/cli-build.ts), as in an app both come from node_modules.
const PACKAGE_CODE = JSON.stringify(
  path.join(process.env.PIXCRAWLER_TEST_CLI_BUILD ?? ROOT, 'src', 'index'),
);

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'pixcrawler-app-'));
  // The app's own dependencies (typeorm, reflect-metadata) resolve as they would in its install.
  symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
  writeFileSync(
    path.join(dir, 'note.ts'),
    `import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';
import type { MigrationInterface, QueryRunner } from 'typeorm';

@Entity('notes')
export class Note {
  @PrimaryGeneratedColumn() id!: number;
  @Column('text') body!: string;
}

// As \`typeorm migration:generate\` writes it: the names TypeORM's naming strategy gives.
export class AddNotes1790000000000 implements MigrationInterface {
  async up(runner: QueryRunner): Promise<void> {
    await runner.query('CREATE TABLE "notes" ("id" SERIAL NOT NULL, "body" text NOT NULL, CONSTRAINT "PK_af6206538ea96c4e77e9f400c3d" PRIMARY KEY ("id"))');
  }
  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE "notes"');
  }
}
`,
  );
  // One stream: the package's options with the app's entity and migration added.
  writeFileSync(
    path.join(dir, 'one-stream.ts'),
    `import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions, entities, migrations } from ${PACKAGE_CODE};
import { AddNotes1790000000000, Note } from './note';

export default new DataSource({
  ...dataSourceOptions({ url: process.env.APP_DATABASE_URL }),
  entities: [...entities, Note],
  migrations: [...migrations, AddNotes1790000000000],
});
`,
  );
  // Two streams: the app's own DataSource, its own migrations table and nothing of the package.
  writeFileSync(
    path.join(dir, 'own-stream.ts'),
    `import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { AddNotes1790000000000, Note } from './note';

export const appDataSource = new DataSource({
  type: 'postgres',
  url: process.env.APP_DATABASE_URL,
  entities: [Note],
  migrations: [AddNotes1790000000000],
  migrationsTableName: 'app_migrations',
});
`,
  );
  writeFileSync(
    path.join(dir, 'two-exports.ts'),
    `import { DataSource } from 'typeorm';
export const a = new DataSource({ type: 'postgres' });
export const b = new DataSource({ type: 'postgres' });
`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = (name: string) => path.join(dir, name);

/** TypeORM's own CLI on a DataSource file, as an app's release script runs it. */
function typeorm(args: string[], url: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(TYPEORM_CLI, args, {
      cwd: ROOT,
      // The package's code here is the run's compiled copy, without declarations: compile the
      // app's files without type-checking them (the docs' test type-checks the same code).
      env: { ...process.env, APP_DATABASE_URL: url, TS_NODE_TRANSPILE_ONLY: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    // Without the colours TypeORM's CLI adds when it thinks it has a terminal (CI=true).
    // eslint-disable-next-line no-control-regex
    child.on('close', (code) => resolve({ code, output: output.replace(/\x1b\[[0-9;]*m/g, '') }));
  });
}

/** pixcrawler-db with the app's DataSource (-d) or, without one, on DATABASE_URL. */
const pixcrawler = (args: string[], url: string) => runCli(args, url, { APP_DATABASE_URL: url });

const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;

describe('one migrations stream: the app lists the package migrations beside its own', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('app_one_stream');
  });
  afterAll(() => db.drop());

  it('typeorm migration:run applies both; pixcrawler-db -d knows them all and verifies the app table too', async () => {
    const run = await typeorm(['migration:run', '-d', file('one-stream.ts')], db.url);
    expect(run.output).toContain('AddNotes1790000000000 has been executed successfully');
    expectExit(run, 0);

    const status = await pixcrawler(
      ['-d', file('one-stream.ts'), '--json', 'status', '--check'],
      db.url,
    );
    expectExit(status, 0);
    expect(json(status.stdout)).toMatchObject({
      unknown: [],
      pending: [],
      current: 'AddNotes1790000000000',
    });
    expect(status.output).toContain('(the DataSource in');

    const verify = await pixcrawler(
      ['-d', file('one-stream.ts'), '--json', 'verify', '--strict'],
      db.url,
    );
    expectExit(verify, 0);
    const report = json(verify.stdout) as {
      tables: Array<{ name: string }>;
      otherTables: string[];
    };
    expect(report.tables.map((t) => t.name)).toContain('notes');
    expect(report.otherTables).toEqual([]);
  });

  it('a drifted app table fails verify -d, and is left alone without -d', async () => {
    await db.query('ALTER TABLE notes ALTER COLUMN body DROP NOT NULL');
    const withApp = await pixcrawler(['-d', file('one-stream.ts'), '--json', 'verify'], db.url);
    expectExit(withApp, 1);
    expect(json(withApp.stdout).findings).toContainEqual(
      expect.objectContaining({ severity: 'error', table: 'notes', kind: 'column', name: 'body' }),
    );

    // Without the app's DataSource: its table is not checked, and its migration is a warning.
    const packageOnly = await pixcrawler(['--json', 'verify'], db.url);
    expectExit(packageOnly, 0);
    expect(json(packageOnly.stdout)).toMatchObject({ otherTables: ['notes'], warnings: 1 });
    await db.query('ALTER TABLE notes ALTER COLUMN body SET NOT NULL');
  });

  it('without -d, migrate refuses the unknown migration and names both causes, changing nothing', async () => {
    const refused = await pixcrawler(['migrate'], db.url);
    expectExit(refused, 1);
    expect(refused.output).toContain('migrations this code does not know (AddNotes1790000000000)');
    expect(refused.output).toMatch(/your application's own migrations.*-d <data-source file>/s);
    expect(refused.output).toMatch(/a newer release of @pixcrawler\/data migrated this database/);
  });

  it('pixcrawler-db -d reverts the app migration, migrates it again, and TypeORM agrees', async () => {
    const revert = await pixcrawler(['-d', file('one-stream.ts'), 'revert'], db.url);
    expectExit(revert, 0);
    expect(await db.query("SELECT to_regclass('notes') AS t")).toEqual([{ t: null }]);

    const migrate = await pixcrawler(
      ['-d', file('one-stream.ts'), '--json', 'migrate', '--verify'],
      db.url,
    );
    expectExit(migrate, 0);
    expect(json(migrate.stdout)).toMatchObject({ applied: ['AddNotes1790000000000'] });

    const show = await typeorm(['migration:show', '-d', file('one-stream.ts')], db.url);
    expectExit(show, 0);
    for (const name of [...PACKAGE, 'AddNotes1790000000000']) {
      expect(show.output).toMatch(new RegExp(`\\[X\\] \\d+ ${name}\\n`));
    }
    const check = await typeorm(
      ['migration:generate', path.join(dir, 'Drift'), '--check', '-d', file('one-stream.ts')],
      db.url,
    );
    expect(check.output).toContain('No changes in database schema were found');
    expectExit(check, 0);
  });
});

describe('two migrations streams: the app keeps its migrations in a table of its own', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('app_two_streams');
  });
  afterAll(() => db.drop());

  it('pixcrawler-db migrates the package, typeorm the app; each verifies its own and leaves the other alone', async () => {
    const ours = await pixcrawler(['migrate'], db.url);
    expectExit(ours, 0);
    const theirs = await typeorm(['migration:run', '-d', file('own-stream.ts')], db.url);
    expectExit(theirs, 0);

    const status = await pixcrawler(['--json', 'status', '--check'], db.url);
    expect(json(status.stdout)).toMatchObject({ ok: true, unknown: [], pending: [] });
    const verify = await pixcrawler(['--json', 'verify', '--strict'], db.url);
    expectExit(verify, 0);
    expect(json(verify.stdout).otherTables).toEqual(['app_migrations', 'notes']);

    const show = await typeorm(['migration:show', '-d', file('own-stream.ts')], db.url);
    expect(show.output).toMatch(/\[X\] \d+ AddNotes1790000000000\n/);
  });

  it('given the app DataSource that lacks the package, every command says which DataSource to give instead', async () => {
    const wrong = await pixcrawler(['-d', file('own-stream.ts'), 'status'], db.url);
    expectExit(wrong, 2);
    expect(wrong.output).toContain("lacks @pixcrawler/data's migrations (");
    expect(wrong.output).toContain('entities (profiles, projects');
    expect(wrong.output).toMatch(/run pixcrawler-db without --data-source/);
  });
});

describe('a data source file the CLI cannot use', () => {
  const url = 'postgresql://nobody@127.0.0.1:1/never';

  it.each([
    ['no-such-file.ts', /--data-source: no such file: .*no-such-file\.ts/],
    ['two-exports.ts', /must export exactly one TypeORM DataSource \(found 2\)/],
  ])('%s: exit 2, saying what to fix, before connecting', async (name, message) => {
    const { code, output } = await pixcrawler(['-d', file(name), 'status'], url);
    expect(code).toBe(2);
    expect(output).toMatch(message);
  });
});
