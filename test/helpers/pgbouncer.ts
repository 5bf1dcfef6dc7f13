import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';

/** Debian's pgbouncer package puts it here. */
const PGBOUNCER = '/usr/sbin/pgbouncer';

export interface PgBouncer {
  /** The URL of `database` through the pooler. */
  url(database: string): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A real PgBouncer in front of the server at `serverUrl` (any database on it, by name), in
 * `mode`, on a port of its own, run as the postgres user (it refuses root). Its clients connect
 * as the server URL's user with no password; it logs in to the server with the URL's password.
 */
export async function startPgBouncer(
  serverUrl: string,
  mode: 'transaction' | 'session',
): Promise<PgBouncer> {
  if (!existsSync(PGBOUNCER)) {
    throw new Error(
      `${PGBOUNCER} is missing: install Debian's pgbouncer package (apt-get install pgbouncer; .ci/run does)`,
    );
  }
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username || 'postgres');
  const password = decodeURIComponent(server.password);
  const port = await freePort();
  const dir = await mkdtemp(path.join(tmpdir(), 'pixcrawler-pgbouncer-'));
  const uid = Number(execFileSync('id', ['-u', 'postgres']).toString());
  const gid = Number(execFileSync('id', ['-g', 'postgres']).toString());
  await chown(dir, uid, gid);
  const serverAuth = password ? ` password=${password}` : '';
  const config = path.join(dir, 'pgbouncer.ini');
  await writeFile(
    config,
    [
      '[databases]',
      `* = host=${server.hostname} port=${server.port || 5432} user=${user}${serverAuth}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${path.join(dir, 'users.txt')}`,
      `pool_mode = ${mode}`,
      'default_pool_size = 8',
      'max_client_conn = 200',
      // pg and TypeORM send these; PgBouncer refuses unknown startup parameters otherwise.
      'ignore_startup_parameters = extra_float_digits,options',
      `logfile = ${path.join(dir, 'pgbouncer.log')}`,
      `pidfile = ${path.join(dir, 'pgbouncer.pid')}`,
      '',
    ].join('\n'),
  );
  await writeFile(path.join(dir, 'users.txt'), `"${user}" ""\n`);
  for (const file of ['pgbouncer.ini', 'users.txt']) await chown(path.join(dir, file), uid, gid);

  const child: ChildProcess = spawn(PGBOUNCER, [config], { stdio: 'ignore', uid, gid });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = (database: string) => `postgresql://${user}@127.0.0.1:${port}/${database}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  // Ready once it answers a query (it starts in a few milliseconds).
  for (let attempt = 0; ; attempt++) {
    const client = new Client({ connectionString: url('postgres') });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      break;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (attempt >= 100 || child.exitCode !== null) {
        const log = await readFile(path.join(dir, 'pgbouncer.log'), 'utf8').catch(() => '');
        await stop();
        throw new Error(`PgBouncer did not start: ${(error as Error).message}\n${log}`, {
          cause: error,
        });
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { url, stop };
}
