import 'reflect-metadata';
import { randomBytes } from 'node:crypto';
import { Presets, SingleBar } from 'cli-progress';
import { Client } from 'pg';
import { DataSource, type Logger } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { maskDatabaseUrl, withDatabase } from '../../src/connection/database-url';
import {
  buildLegacyDatabase,
  legacySizes,
  type LegacySizes,
} from '../../src/testing/legacy-builder';
import { runPendingMigrations } from '../../src/migrator/migrator';
import { startTestServer, type TestServer } from '../../src/testing/test-server';
import { serverSettings, SETTINGS } from './servers';

/** Sizes of one run: `--quick` for a smoke run, `--images <n>` to choose the scale. */
export interface BenchSizes {
  quick: boolean;
  /** Images in the legacy dataset, and activity logs (as many). */
  images: number;
  /** Rows the ingest benchmark loads through the repository and through COPY. */
  ingestRows: number;
  /** Rows TypeORM save() gets (it is far slower, so fewer). */
  saveRows: number;
  /** The two export sizes; memory is compared between them. */
  exportSmall: number;
  exportLarge: number;
  /** Image files in the two archive (zip/tar) exports, and in the Azurite archive run. */
  archiveSmall: number;
  archiveLarge: number;
  azuriteFiles: number;
  /** Jobs per claiming run, and the worker counts. */
  claimJobs: number;
  workers: number[];
  /** Finished jobs already in the table for the claiming runs' "history" case. */
  claimHistory: number;
  /** Requests whose pickup latency (request to start) is measured. */
  pickupSamples: number;
  /** Samples per query pattern in the index benchmark. */
  queryIterations: number;
  /** Rows inserted per write-cost round. */
  writeRows: number;
}

export const DEFAULT_IMAGES = 1_000_000;
export const QUICK_IMAGES = 20_000;

export function parseArgs(argv: string[]): BenchSizes {
  const quick = argv.includes('--quick');
  const at = argv.indexOf('--images');
  let images = quick ? QUICK_IMAGES : DEFAULT_IMAGES;
  if (at >= 0) {
    images = Number(String(argv[at + 1]).replaceAll('_', ''));
    if (!Number.isInteger(images) || images < 1000) {
      throw new Error('--images expects a whole number of at least 1000');
    }
  }
  return {
    quick,
    images,
    ingestRows: images,
    saveRows: Math.min(images, quick ? 1_000 : 10_000),
    exportSmall: Math.max(1000, Math.floor(images / 10)),
    exportLarge: images,
    archiveSmall: quick ? 200 : 5_000,
    archiveLarge: quick ? 2_000 : 50_000,
    azuriteFiles: quick ? 300 : 5_000,
    claimJobs: quick ? 1_000 : 10_000,
    workers: [1, 4, 16],
    claimHistory: quick ? 20_000 : 1_000_000,
    pickupSamples: quick ? 10 : 40,
    queryIterations: quick ? 10 : 40,
    writeRows: quick ? 2_000 : 20_000,
  };
}

/** The legacy dataset's table sizes for a run: as many activity logs as images. */
export function datasetSizes(sizes: BenchSizes): LegacySizes {
  return legacySizes({ images: sizes.images, activityLogs: sizes.images });
}

/** A progress bar on a terminal; silent when output is not a terminal (CI logs). */
export function progressBar(label: string): SingleBar {
  return new SingleBar(
    {
      format: `  ${label.padEnd(28)} {bar} {percentage}% | {value}/{total} {unit}`,
      hideCursor: true,
    },
    Presets.shades_classic,
  );
}

const SILENT: Logger = {
  logQuery: () => undefined,
  logQueryError: () => undefined,
  logQuerySlow: () => undefined,
  logSchemaBuild: () => undefined,
  logMigration: () => undefined,
  log: () => undefined,
};

/**
 * One benchmark run's server and databases: a throwaway embedded PostgreSQL (never the CLI's
 * ./.pixcrawler data), or DATABASE_URL's server, on which every database is created fresh with a
 * `pixcrawler_bench_` name and dropped at the end.
 */
export class BenchContext {
  private readonly created: string[] = [];
  private readonly opened: DataSource[] = [];
  private legacy?: Promise<string>;
  private migrated?: Promise<string>;
  private readonly prefix = `pixcrawler_bench_${randomBytes(3).toString('hex')}`;

  private constructor(
    readonly server: TestServer,
    readonly sizes: BenchSizes,
    readonly serverVersion: string,
    private readonly versionNum: number,
    /** The settings that move the figures (SETTINGS), as the server reports them. */
    readonly settings: Record<string, string>,
  ) {}

  /** A context on `server`, or on startTestServer()'s (DATABASE_URL's, or a throwaway embedded one). */
  static async start(sizes: BenchSizes, server?: TestServer): Promise<BenchContext> {
    server ??= await startTestServer();
    const client = new Client({ connectionString: server.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: string; num: string }>(
        `SELECT current_setting('server_version') AS version,
                current_setting('server_version_num') AS num`,
      );
      const settings = await serverSettings(server.url);
      return new BenchContext(server, sizes, rows[0].version, Number(rows[0].num), settings);
    } catch (error) {
      await server.stop();
      throw error;
    } finally {
      await client.end();
    }
  }

  /** `fsync on, jit off, …`: the settings line of the docs' headers. */
  get settingsLine(): string {
    return SETTINGS.map((name) => `${name} ${this.settings[name] ?? '?'}`).join(', ');
  }

  get label(): string {
    return this.server.embedded
      ? `throwaway embedded PostgreSQL ${this.serverVersion}`
      : `${maskDatabaseUrl(this.server.url)} (PostgreSQL ${this.serverVersion})`;
  }

  async adminQuery(sql: string): Promise<void> {
    const client = new Client({ connectionString: this.server.url });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  /** A new empty database (or a copy of `template`); returns its URL. Dropped by `close()`. */
  async createDatabase(label: string, template?: string): Promise<string> {
    const name = `${this.prefix}_${label}`.slice(0, 63);
    let sql = `CREATE DATABASE "${name}"`;
    if (template) {
      // FILE_COPY (PostgreSQL 15+) copies the files instead of WAL-logging every block.
      sql += ` TEMPLATE "${template}"${this.versionNum >= 150000 ? ' STRATEGY FILE_COPY' : ''}`;
    }
    await this.adminQuery(sql);
    this.created.push(name);
    return withDatabase(this.server.url, name);
  }

  async dropDatabase(url: string): Promise<void> {
    const name = decodeURIComponent(new URL(url).pathname.slice(1));
    await this.adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    this.created.splice(this.created.indexOf(name), 1);
  }

  /** An initialised DataSource with the recommended options; closed by `close()`. */
  async connect(url: string, poolSize = 10): Promise<DataSource> {
    const dataSource = new DataSource(dataSourceOptions({ url, poolSize, logger: SILENT }));
    await dataSource.initialize();
    this.opened.push(dataSource);
    return dataSource;
  }

  /** Runs every migration the way `pixcrawler-db migrate [--baseline]` does. */
  async migrate(url: string, options: { baseline?: boolean } = {}): Promise<void> {
    const dataSource = await this.connect(url, 2);
    try {
      await runPendingMigrations(dataSource, {}, { baseline: options.baseline });
    } finally {
      await dataSource.destroy();
    }
  }

  /** An empty database at the latest schema. */
  async migratedEmpty(label: string): Promise<string> {
    const url = await this.createDatabase(label);
    await this.migrate(url);
    return url;
  }

  /**
   * The legacy dataset (the five old tables, `images` images and as many activity logs), built
   * once per run with the legacy builder and kept as a template to copy; never used directly.
   */
  legacyTemplate(): Promise<string> {
    this.legacy ??= (async () => {
      const url = await this.createDatabase('legacy');
      const sizes = datasetSizes(this.sizes);
      const total = Object.values(sizes).reduce((a, b) => a + b, 0);
      const bar = progressBar('loading legacy dataset');
      bar.start(total, 0, { unit: 'rows' });
      const loaded: Record<string, number> = {};
      try {
        await buildLegacyDatabase(url, {
          ...sizes,
          onProgress: (table, done) => {
            loaded[table] = done;
            bar.update(Object.values(loaded).reduce((a, b) => a + b, 0));
          },
        });
      } finally {
        bar.stop();
      }
      return decodeURIComponent(new URL(url).pathname.slice(1));
    })();
    return this.legacy;
  }

  /** A copy of the legacy dataset, not yet migrated. */
  async legacyCopy(label: string): Promise<string> {
    return this.createDatabase(label, await this.legacyTemplate());
  }

  /**
   * The legacy dataset upgraded with `migrate --baseline`: the schema every query benchmark runs
   * on. Built once per run; benchmarks that change it undo their changes (rolled back).
   */
  migratedDataset(): Promise<string> {
    this.migrated ??= (async () => {
      const url = await this.legacyCopy('migrated');
      await this.migrate(url, { baseline: true });
      await this.adminQueryOn(url, 'VACUUM ANALYZE');
      return url;
    })();
    return this.migrated;
  }

  async adminQueryOn(url: string, sql: string): Promise<void> {
    const client = new Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.opened.filter((d) => d.isInitialized).map((d) => d.destroy()));
    for (const name of [...this.created].reverse()) {
      await this.adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`).catch(
        () => undefined,
      );
    }
    await this.server.stop();
  }
}
