import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../../src/testing/test-server';
import { runCli } from '../helpers/cli';

/**
 * Exit codes are the contract with or without DATABASE_URL. With it unset, the CLI starts an
 * embedded PostgreSQL whose exit hook used to end the process with 0 whatever the command said
 * (a pending migration, a failed verify, a server that could not start).
 */
describe('exit codes on the embedded database', () => {
  let parent: string;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    parent = mkdtempSync(path.join(tmpdir(), 'pixcrawler-exit-codes-'));
    chmodSync(parent, 0o755); // the server runs as `postgres` when the tests run as root
    env = {
      PIXCRAWLER_DATA_DIR: path.join(parent, 'pg'),
      PIXCRAWLER_EMBEDDED_PORT: String(await freePort()),
    };
  });
  afterAll(() => rmSync(parent, { recursive: true, force: true }));

  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
    runCli(args, '', { ...env, ...extra });

  it('migrate and revert exit 0; status --check exits 1 while a migration is pending; verify exits 1 on errors', async () => {
    expect((await cli(['migrate'])).code).toBe(0);
    expect((await cli(['status', '--check'])).code).toBe(0);
    expect((await cli(['revert'])).code).toBe(0);

    const status = await cli(['status', '--check']);
    expect(status.output).toContain('1 pending');
    expect(status.code).toBe(1);

    const verify = await cli(['verify']);
    expect(verify.output).toContain('Verification FAILED');
    expect(verify.code).toBe(1);

    expect((await cli(['nonsense'])).code).toBe(2);
  });

  it('a port that is taken exits 3 with a message, not a stack trace', async () => {
    const port = await freePort();
    const squatter: Server = createServer();
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    try {
      const run = await cli(['status'], {
        PIXCRAWLER_DATA_DIR: path.join(parent, 'taken'),
        PIXCRAWLER_EMBEDDED_PORT: String(port),
      });
      expect(run.code).toBe(3);
      expect(run.output).toContain(String(port));
      expect(run.output).not.toMatch(/^\s+at /m);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });
});
