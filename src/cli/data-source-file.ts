import { createRequire } from 'node:module';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { DataSource, InstanceChecker } from 'typeorm';
// TypeORM's own loader for `-d` files: CommonJS and ES modules alike, as its CLI loads them.
import { importOrRequireFile } from 'typeorm/util/ImportUtils';
import { entityTableNames } from '../entities/table-names';
import { migrations, migrationName } from '../migrations';
import { maskDatabaseUrl } from '../connection/database-url';
import type { DatabaseTarget } from '../local/database-target';
import { ExitCode } from './output';

/**
 * `-d, --data-source <file>`: the application's own DataSource, as `typeorm -d` takes it. The CLI
 * then knows every migration and entity the application gives TypeORM: its own migrations beside
 * the package's (one stream, one migrations table) are no longer "unknown", and `verify` checks
 * the application's entities' tables too.
 */

/** A DataSource file the CLI cannot use, said so that the operator can fix it. */
export class DataSourceFileError extends Error {
  readonly exitCode = ExitCode.usage;

  constructor(message: string) {
    super(message);
    this.name = 'DataSourceFileError';
  }
}

const TYPESCRIPT = /\.[cm]?ts$/;

/**
 * A TypeScript file needs a loader: the one already registered (the CLI in a checkout runs under
 * ts-node), else the application's own ts-node, as `typeorm-ts-node-commonjs` uses it.
 */
function ensureTypeScriptLoader(file: string): void {
  if (require.extensions['.ts']) return;
  const fromApp = createRequire(path.join(process.cwd(), 'package.json'));
  let tsNode: { register: (options: object) => unknown };
  try {
    tsNode = fromApp('ts-node') as typeof tsNode;
  } catch {
    throw new DataSourceFileError(
      `${file} is TypeScript, and ts-node is not installed here to load it. Install it ` +
        '(npm install --save-dev ts-node), or point --data-source at the compiled .js file.',
    );
  }
  tsNode.register({ transpileOnly: true });
}

/** The file's exports, loaded as TypeORM's CLI loads it (require, or import for ES modules). */
async function loadExports(file: string): Promise<unknown> {
  if (TYPESCRIPT.test(file)) ensureTypeScriptLoader(file);
  const [exported] = await importOrRequireFile(file);
  return exported;
}

/** The one DataSource a file exports (default export, or the only DataSource among its exports). */
async function exportedDataSource(file: string): Promise<DataSource> {
  let exported: unknown;
  try {
    exported = await loadExports(file);
  } catch (error) {
    if (error instanceof DataSourceFileError) throw error;
    throw new DataSourceFileError(
      `Cannot load the data source file ${file}: ${(error as Error).message}`,
    );
  }
  if (InstanceChecker.isDataSource(exported)) return exported;
  const found: DataSource[] = [];
  for (const value of Object.values((exported ?? {}) as Record<string, unknown>)) {
    // An exported promise of a DataSource (an async factory) counts, as TypeORM's CLI has it.
    const settled: unknown = await value;
    if (InstanceChecker.isDataSource(settled) && !found.includes(settled)) found.push(settled);
  }
  if (found.length !== 1) {
    throw new DataSourceFileError(
      `${file} must export exactly one TypeORM DataSource (found ${found.length}): ` +
        '`export default new DataSource({ ... })`, or one named export.',
    );
  }
  return found[0];
}

/** The connection a DataSource's options describe, as a URL: what a report shows (masked). */
function connectionUrl(options: DataSource['options']): string {
  const settings = options as {
    url?: string;
    host?: string;
    port?: number;
    username?: string;
    password?: unknown;
    database?: string;
    replication?: { master: { url?: string } & Record<string, unknown> };
  };
  const primary = settings.replication?.master ?? settings;
  if (typeof primary.url === 'string') return primary.url;
  const url = new URL('postgresql://localhost');
  url.hostname = String(primary.host ?? 'localhost');
  if (primary.port !== undefined) url.port = String(primary.port);
  if (typeof primary.username === 'string') url.username = encodeURIComponent(primary.username);
  if (typeof primary.password === 'string') url.password = encodeURIComponent(primary.password);
  url.pathname = `/${encodeURIComponent(String(primary.database ?? ''))}`;
  return url.toString();
}

/** What is missing from `present` among `required`, by name. */
const missingNames = (required: string[], present: string[]): string[] =>
  required.filter((name) => !present.includes(name));

/**
 * The package's migrations and entities must be among the DataSource's: a DataSource of the
 * application's own (its own migrations table, the other pattern) is not the one to give here.
 */
function assertHoldsThePackage(dataSource: DataSource, file: string): void {
  const packageMigrations = migrations.map((migration) => migrationName(new migration()));
  const missingMigrations = missingNames(
    packageMigrations,
    dataSource.migrations.map(migrationName),
  );
  const packageTables = entityTableNames();
  const missingTables = missingNames(
    packageTables,
    dataSource.entityMetadatas.map((metadata) => metadata.tableName),
  );
  const missing = [
    missingMigrations.length > 0 && `migrations (${missingMigrations.join(', ')})`,
    missingTables.length > 0 && `entities (${missingTables.join(', ')})`,
  ].filter(Boolean);
  if (missing.length === 0) return;
  throw new DataSourceFileError(
    `The DataSource in ${file} lacks @pixcrawler/data's ${missing.join(' and ')}. Either add ` +
      'them to it (`migrations: [...migrations, ...yours]`, `entities: [...entities, ...yours]` ' +
      "from '@pixcrawler/data': one migrations table for both), or keep your migrations in a " +
      'DataSource of their own (its own migrationsTableName) and run pixcrawler-db without ' +
      '--data-source, or with a file exporting `new DataSource(dataSourceOptions({ url }))`.',
  );
}

/**
 * Loads the DataSource a file exports and initialises it, for one command. TypeORM's CLI does
 * the same to the options first: nothing runs by itself at initialize (no synchronize, no
 * migrationsRun, no dropSchema) and no subscriber sees the command's writes.
 */
export async function openDataSourceFile(
  file: string,
  { poolSize }: { poolSize?: number } = {},
): Promise<{ dataSource: DataSource; target: DatabaseTarget }> {
  const resolved = path.resolve(file);
  if (!existsSync(resolved)) {
    throw new DataSourceFileError(`--data-source: no such file: ${resolved}`);
  }
  const dataSource = await exportedDataSource(resolved);
  if (dataSource.options.type !== 'postgres') {
    throw new DataSourceFileError(
      `The DataSource in ${file} is for ${dataSource.options.type}; @pixcrawler/data needs PostgreSQL ` +
        "(type: 'postgres').",
    );
  }
  if (dataSource.isInitialized) {
    throw new DataSourceFileError(
      `The DataSource in ${file} is already initialised when the file loads: export it without ` +
        'calling initialize(), as for TypeORM\u2019s own CLI.',
    );
  }
  dataSource.setOptions({
    synchronize: false,
    migrationsRun: false,
    dropSchema: false,
    subscribers: [],
    ...(poolSize ? { poolSize } : {}),
  });
  const url = connectionUrl(dataSource.options);
  return {
    dataSource,
    target: {
      url,
      label: `${maskDatabaseUrl(url)} (the DataSource in ${file})`,
      close: async () => undefined,
    },
  };
}

/** After initialize: the DataSource holds the package, and says whether it runs as TypeORM would. */
export function checkDataSourceFile(dataSource: DataSource, file: string): string[] {
  assertHoldsThePackage(dataSource, file);
  const notes: string[] = [];
  if (dataSource.options.migrationsTransactionMode !== 'each') {
    notes.push(
      `The DataSource in ${file} has migrationsTransactionMode ` +
        `'${dataSource.options.migrationsTransactionMode ?? 'all'}': pixcrawler-db runs each ` +
        "migration in its own transaction anyway, but `typeorm migration:run` needs 'each' for " +
        "@pixcrawler/data's migrations that build indexes CONCURRENTLY. Set " +
        "migrationsTransactionMode: 'each'.",
    );
  }
  return notes;
}
