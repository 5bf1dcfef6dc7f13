import { existsSync, mkdtempSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/testing/test-server';
import { spawnCli } from '../helpers/cli';

/**
 * With DATABASE_URL unset the CLI starts its own embedded PostgreSQL; Ctrl-C must stop it with
 * the command, and say so without a stack trace.
 */
describe('Ctrl-C during a command on the embedded database', () => {
  let parent: string;

  beforeAll(() => {
    parent = mkdtempSync(path.join(tmpdir(), 'pixcrawler-interrupt-'));
    chmodSync(parent, 0o755); // the server runs as `postgres` when the tests run as root
  });
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  it('stops the embedded server it started and exits 130 with a plain message', async () => {
    const dataDir = path.join(parent, 'pg');
    const run = spawnCli(['seed-legacy', '--images', '5000000'], '', {
      PIXCRAWLER_DATA_DIR: dataDir,
      PIXCRAWLER_EMBEDDED_PORT: String(await freePort()),
    });
    // Interrupt once the server is up and the load has begun.
    while (!run.output().includes('Building a legacy database')) {
      if (run.child.exitCode !== null) throw new Error(`exited early:\n${run.output()}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(true);
    run.child.kill('SIGINT');

    const { code } = await run.exited;
    expect(code).toBe(130);
    expect(run.output()).toContain('Interrupted (SIGINT): stopping.');
    expect(run.output()).not.toMatch(/^\s+at /m);
    // PostgreSQL removes its pid file when it has shut down.
    expect(existsSync(path.join(dataDir, 'postmaster.pid'))).toBe(false);
  });
});
