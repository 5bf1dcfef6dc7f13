import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DataSource, type Logger, type MigrationInterface } from 'typeorm';
import { dataSourceOptions } from '../src/connection/data-source-options';
import { maskDatabaseUrl } from '../src/connection/database-url';
import { migrations } from '../src/migrations';
import { createTestDatabase } from '../src/testing/test-database';
import { startTestServer } from '../src/testing/test-server';

/**
 * Lints the SQL the migrations really execute (not the TypeScript that builds it) with squawk:
 * runs every migration's up() against a scratch database, captures each statement through a
 * TypeORM logger, writes one .sql file per migration (transactional ones wrapped in
 * BEGIN/COMMIT, as TypeORM runs them) and runs squawk on the files.
 *
 * The scratch database is a throwaway database on DATABASE_URL's server when set, else on a
 * throwaway embedded PostgreSQL (the testing kit's server and database). Usage: npm run lint:migrations
 */

/**
 * The squawk warnings each migration keeps on purpose, written into its captured file as
 * `-- squawk-ignore-file`. Each is explained in a comment in the migration itself ("squawk:").
 * Nothing is excluded globally, so a new migration is linted by every rule.
 */
const SCHEMA_TYPES = ['prefer-bigint-over-int', 'prefer-identity', 'prefer-text-field'];
const IGNORED: Readonly<Record<string, readonly string[]>> = {
  // SPEC.md fixes the column types: serial (int4) ids and varchar(n), as existing databases have.
  LegacySchema1731542400000: SCHEMA_TYPES,
  JobTablesAndConstraints1731542400001: SCHEMA_TYPES,
  // Rerunnable by catalog lookups instead of IF [NOT] EXISTS / a transaction.
  IndexExistingTables1731542400002: ['prefer-robust-stmts'],
  ValidateConstraints1731542400003: ['prefer-robust-stmts'],
  PendingJobIndexes1731542400004: ['prefer-robust-stmts'],
};

/** The oldest server the schema supports (SPEC.md): squawk judges lock behaviour for it. */
const PG_VERSION = '13.0';

const OUTPUT_DIR = path.join(process.cwd(), '.pixcrawler', 'squawk');

/**
 * squawk runs through npx, pinned, rather than as a devDependency: the registry this project
 * installs from holds its linux-x64 binary package only, and a lockfile that names squawk-cli
 * then fails `npm ci` for the missing platforms.
 */
const SQUAWK = 'squawk-cli@2.66.0';

/** Collects the statements logged while `capturing` is on; reads (SELECT) are left out. */
class CapturingLogger implements Logger {
  capturing = false;
  statements: string[] = [];
  logQuery(query: string): void {
    if (this.capturing && !/^\s*SELECT\b/i.test(query)) this.statements.push(query.trim());
  }
  logQueryError(): void {}
  logQuerySlow(): void {}
  logSchemaBuild(): void {}
  logMigration(): void {}
  log(): void {}
}

async function captureMigrationSql(url: string): Promise<Array<{ name: string; file: string }>> {
  const logger = new CapturingLogger();
  const dataSource = new DataSource(dataSourceOptions({ url, logger, logging: ['query'] }));
  await dataSource.initialize();
  const queryRunner = dataSource.createQueryRunner();
  mkdirSync(OUTPUT_DIR, { recursive: true });
  const files: Array<{ name: string; file: string }> = [];
  try {
    for (const [index, Migration] of migrations.entries()) {
      const migration: MigrationInterface = new Migration();
      const name = migration.name ?? Migration.name;
      const transactional = migration.transaction !== false;
      // Run as TypeORM runs it (migrationsTransactionMode 'each'), capturing only up()'s SQL.
      if (transactional) await queryRunner.startTransaction();
      logger.statements = [];
      logger.capturing = true;
      try {
        await migration.up(queryRunner);
      } finally {
        logger.capturing = false;
      }
      if (transactional) await queryRunner.commitTransaction();

      const body = logger.statements.map((statement) => `${statement};`).join('\n\n');
      const sql = transactional ? `BEGIN;\n\n${body}\n\nCOMMIT;\n` : `${body}\n`;
      const ignored = IGNORED[name] ?? [];
      const header = ignored.length > 0 ? `-- squawk-ignore-file ${ignored.join(', ')}\n` : '';
      const file = path.join(OUTPUT_DIR, `${String(index + 1).padStart(2, '0')}-${name}.sql`);
      writeFileSync(
        file,
        `${header}-- SQL executed by ${name}.up() (captured by scripts/lint-migrations.ts)\n\n${sql}`,
      );
      files.push({ name, file });
    }
  } finally {
    await queryRunner.release();
    await dataSource.destroy();
  }
  return files;
}

async function main(): Promise<number> {
  const server = await startTestServer();
  let files: Array<{ name: string; file: string }>;
  try {
    const scratch = await createTestDatabase({ serverUrl: server.url, label: 'squawk' });
    console.log(`Scratch database ${scratch.name} on ${maskDatabaseUrl(server.url)}`);
    try {
      files = await captureMigrationSql(scratch.url);
    } finally {
      await scratch.drop();
    }
  } finally {
    await server.stop();
  }
  const args = [
    `--pg-version=${PG_VERSION}`,
    ...files.map((f) => path.relative(process.cwd(), f.file)),
  ];
  console.log(`squawk ${args.join(' ')}`);
  const result = spawnSync('npx', ['--yes', SQUAWK, ...args], { stdio: 'inherit' });
  if (result.error) throw result.error;
  return result.status ?? 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  },
);
