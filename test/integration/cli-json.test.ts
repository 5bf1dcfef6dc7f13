import { runCli } from '../helpers/cli';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { migrations } from '../../src/migrations';

/**
 * The CLI as CI scripts use it: `--json` puts the typed result, and only it, on stdout, and the
 * exit codes are a contract (0 ok, 1 differences or refusal, 2 usage, 3 cannot connect).
 */
const ALL = migrations.map((m) => new m().name!);
let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('cli_json');
});
afterAll(() => db.drop());

const json = (stdout: string) => JSON.parse(stdout) as Record<string, unknown>;

describe('exit codes and --json', () => {
  it('status --check exits 1 while migrations are pending, with the status as JSON', async () => {
    const { code, stdout } = await runCli(['status', '--check', '--json'], db.url);
    expect(code).toBe(1);
    expect(json(stdout)).toMatchObject({ ok: false, current: null, pending: ALL, upToDate: false });
  });

  it('migrate --json reports what it applied, and then status --check exits 0', async () => {
    const migrated = await runCli(['migrate', '--json'], db.url);
    expect(migrated.code).toBe(0);
    expect(json(migrated.stdout)).toEqual({ ok: true, applied: ALL, baselined: null });

    const status = await runCli(['--json', 'status', '--check'], db.url);
    expect(status.code).toBe(0);
    expect(json(status.stdout)).toMatchObject({ ok: true, current: ALL.at(-1), pending: [] });
  });

  it('verify --json gives the verification report with no human lines on stdout', async () => {
    const { code, stdout, output } = await runCli(['verify', '--json'], db.url);
    expect(code).toBe(0);
    expect(json(stdout)).toMatchObject({ ok: true, errors: 0, drift: [] });
    expect(output).toContain('Verification passed'); // the report still reaches stderr
  });

  it('verify exits 1 with the finding in the JSON when an index is missing', async () => {
    await db.query('DROP INDEX ix_crawl_job_status');
    const { code, stdout } = await runCli(['verify', '--json'], db.url);
    expect(code).toBe(1);
    const report = json(stdout) as { ok: boolean; findings: Array<Record<string, unknown>> };
    expect(report.ok).toBe(false);
    expect(report.findings).toContainEqual(
      expect.objectContaining({ severity: 'error', kind: 'index', name: 'ix_crawl_job_status' }),
    );
  });

  it('exits 2 on an unknown flag, and 3 when it cannot connect', async () => {
    const usage = await runCli(['status', '--no-such-flag'], db.url);
    expect(usage.code).toBe(2);
    expect(usage.output).toMatch(/unknown option '--no-such-flag'/);

    const unreachable = await runCli(['status', '--json'], 'postgresql://app:pw@127.0.0.1:1/x');
    expect(unreachable.code).toBe(3);
    expect(json(unreachable.stdout)).toMatchObject({ ok: false });
    expect(unreachable.stdout).not.toContain(':pw@');
  });

  it('a refusal exits 1 and carries its reason code in the JSON', async () => {
    await db.query('DROP SCHEMA public CASCADE; CREATE SCHEMA public');
    await db.query('CREATE TABLE profiles (id uuid PRIMARY KEY)');
    const { code, stdout, output } = await runCli(['migrate', '--json'], db.url);
    expect(code).toBe(1);
    expect(json(stdout)).toMatchObject({
      ok: false,
      refusal: { reason: 'adoption-required', existingTables: ['profiles'] },
    });
    expect(output).toMatch(/pixcrawler-db migrate --baseline/);
  });
});
