import { execFile, execFileSync } from 'node:child_process';
import { appendFileSync, chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { currentWalLsn, waitForReplay } from '../../src/connection/read-routing';
import { freePort } from '../../src/testing/test-server';

const run = promisify(execFile);

/**
 * A primary and a streaming replica made with the server package's own tools (initdb,
 * pg_basebackup -R, pg_ctl from `pg_config --bindir`), as a test's own topology: two servers on
 * free ports in a temporary folder, trust authentication on 127.0.0.1 only, stopped and deleted
 * by `stop()`. Run as root, the servers run as the `postgres` user, as PostgreSQL requires.
 */
export interface StreamingReplica {
  /** postgresql:// URL of `database` (default `postgres`) on the primary. */
  primaryUrl(database?: string): string;
  /** The same database on the replica. */
  replicaUrl(database?: string): string;
  /** Major version of the servers (the tools' version). */
  version: string;
  /**
   * Resolves once the replica has replayed everything committed on the primary so far: the
   * replica's pg_last_wal_replay_lsn() has reached the primary's pg_current_wal_lsn().
   */
  caughtUp(): Promise<void>;
  /** Stops the replica alone (fast shutdown: its connections are closed), or starts it again. */
  stopReplica(): Promise<void>;
  startReplica(): Promise<void>;
  stop(): Promise<void>;
}

/** Run as root, the tools run as `postgres`; otherwise as whoever runs the tests. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (userInfo().uid !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres']).toString().trim());
  return { uid: id('-u'), gid: id('-g') };
}

function binDir(): string {
  try {
    return execFileSync('pg_config', ['--bindir']).toString().trim();
  } catch (error) {
    throw new Error(
      'The replica tests need a PostgreSQL server package (initdb, pg_basebackup, pg_ctl); ' +
        '`pg_config --bindir` did not answer. Install postgresql (Debian: apt-get install ' +
        'postgresql) or put its pg_config on PATH.',
      { cause: error },
    );
  }
}

const SHARED_SETTINGS = [
  "listen_addresses = '127.0.0.1'",
  "unix_socket_directories = ''",
  // Throwaway servers: durability off for speed.
  'fsync = off',
  'synchronous_commit = off',
  // No background reads or writes of our tables: the tests compare per-table statistics.
  'autovacuum = off',
  'max_connections = 40',
  'shared_buffers = 32MB',
];

export async function startStreamingReplica(): Promise<StreamingReplica> {
  const bin = binDir();
  const user = serverUser();
  const tool = (name: string, args: string[]) =>
    run(path.join(bin, name), args, { ...user, env: { ...process.env, LC_ALL: 'C' } });

  const root = mkdtempSync(path.join(tmpdir(), 'pixcrawler-replica-'));
  if (user) chownSync(root, user.uid, user.gid);
  const primaryDir = path.join(root, 'primary');
  const replicaDir = path.join(root, 'replica');
  const [primaryPort, replicaPort] = [await freePort(), await freePort()];
  const started: string[] = [];
  const url = (port: number, database = 'postgres') =>
    `postgresql://postgres@127.0.0.1:${port}/${database}`;

  const stopAll = async () => {
    for (const dir of started.reverse()) {
      await tool('pg_ctl', ['-D', dir, '-m', 'fast', '-w', 'stop']).catch(() => undefined);
    }
    started.length = 0;
    rmSync(root, { recursive: true, force: true });
  };

  async function startReplica() {
    await tool('pg_ctl', ['-D', replicaDir, '-l', path.join(root, 'replica.log'), '-w', 'start']);
    started.push(replicaDir);
  }
  async function stopReplica() {
    await tool('pg_ctl', ['-D', replicaDir, '-m', 'fast', '-w', 'stop']);
    started.splice(started.indexOf(replicaDir), 1);
  }

  try {
    await tool('initdb', [
      '-D',
      primaryDir,
      '-U',
      'postgres',
      '--auth=trust',
      '--encoding=UTF8',
      '--no-locale',
    ]);
    appendFileSync(
      path.join(primaryDir, 'postgresql.conf'),
      [...SHARED_SETTINGS, `port = ${primaryPort}`, 'wal_level = replica', ''].join('\n'),
    );
    await tool('pg_ctl', ['-D', primaryDir, '-l', path.join(root, 'primary.log'), '-w', 'start']);
    started.push(primaryDir);

    // -R writes standby.signal and primary_conninfo: the copy starts as a streaming standby.
    await tool('pg_basebackup', [
      '-h',
      '127.0.0.1',
      '-p',
      String(primaryPort),
      '-U',
      'postgres',
      '-D',
      replicaDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
    ]);
    appendFileSync(
      path.join(replicaDir, 'postgresql.conf'),
      // Later lines win over the primary's copied settings. hot_standby_feedback keeps the
      // primary from vacuuming rows a long read on the replica (an export) still needs.
      [`port = ${replicaPort}`, 'hot_standby = on', 'hot_standby_feedback = on', ''].join('\n'),
    );
    await startReplica();
  } catch (error) {
    await stopAll();
    throw error;
  }

  const onServer = async <T>(port: number, work: (client: Client) => Promise<T>) => {
    const client = new Client({ connectionString: url(port) });
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  };
  const version = await onServer(primaryPort, async (client) => {
    const { rows } = await client.query<{ v: string }>(
      "SELECT current_setting('server_version_num') AS v",
    );
    return String(Math.floor(Number(rows[0].v) / 10000));
  });

  return {
    version,
    primaryUrl: (database) => url(primaryPort, database),
    replicaUrl: (database) => url(replicaPort, database),
    async caughtUp() {
      const lsn = await onServer(primaryPort, (primary) =>
        currentWalLsn(async (sql, params) => (await primary.query(sql, params)).rows),
      );
      const caughtUp = await onServer(replicaPort, (replica) =>
        waitForReplay(async (sql, params) => (await replica.query(sql, params)).rows, lsn, 60_000),
      );
      if (!caughtUp) throw new Error(`the replica did not replay up to ${lsn} within 60 s`);
    },
    stopReplica,
    startReplica,
    stop: stopAll,
  };
}
