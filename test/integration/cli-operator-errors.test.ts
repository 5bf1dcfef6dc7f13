import { Client } from 'pg';
import { withDatabase } from '../../src/connection/database-url';
import { runCli, spawnCli } from '../helpers/cli';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/** Operator mistakes and failing servers: one line saying what to do, exit 1, nothing half-done. */
describe('the CLI facing operator errors', () => {
  const stackFrame = /^\s+at /m;
  const dbs: TestDatabase[] = [];
  const freshDatabase = async (label: string) => {
    const db = await createTestDatabase(label);
    dbs.push(db);
    return db;
  };
  const tables = async (db: TestDatabase) =>
    (
      await db.query<{ name: string }>(
        `SELECT relname AS name FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1`,
      )
    ).map((row) => row.name);

  afterAll(async () => {
    for (const db of dbs) await db.drop();
  });

  it.each([
    ['a URL with one slash', 'postgresql:/app:s3cret@127.0.0.1:1/x', /two slashes/],
    [
      'a %-malformed password',
      'postgresql://app:%ff%fes3cret@127.0.0.1:1/x',
      /not valid percent-encoding/,
    ],
  ])('refuses %s before connecting, without printing the password', async (_l, url, message) => {
    const { code, output } = await runCli(['status'], url);
    expect(code).toBe(3);
    expect(output).toMatch(message);
    expect(output).not.toContain('s3cret');
    expect(output).not.toMatch(stackFrame);
  });

  it('masks a password given as a query parameter', async () => {
    const { code, output } = await runCli(
      ['status'],
      'postgresql://app@127.0.0.1:1/x?password=s3cret&sslpassword=s3cret',
    );
    expect(code).toBe(3);
    expect(output).toContain('password=***');
    expect(output).not.toContain('s3cret');
  });

  it('refuses a bad PIXCRAWLER_* setting before writing anything', async () => {
    const db = await freshDatabase('cli-settings');
    const { code, output } = await runCli(['migrate'], db.url, { PIXCRAWLER_LOCK_TIMEOUT: 'soon' });
    expect(code).toBe(2);
    expect(output).toContain(
      'PIXCRAWLER_LOCK_TIMEOUT must be a PostgreSQL duration such as 5s or 500ms, got "soon"',
    );
    expect(output).not.toMatch(stackFrame);
    expect(await tables(db)).toEqual([]);
  });

  it('says which privilege is missing when the user may not create tables, and records no migration', async () => {
    const db = await freshDatabase('cli-permission');
    const role = `limited_${Date.now()}`;
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'limited'`);
    await db.query(`REVOKE CREATE ON SCHEMA public FROM PUBLIC`);
    const url = new URL(db.url);
    url.username = role;
    url.password = 'limited';
    try {
      const { code, output } = await runCli(['migrate'], url.toString());
      expect(code).toBe(1);
      expect(output).toMatch(
        /The database refused: permission denied for schema public\. Connect as the owner/,
      );
      expect(output).not.toMatch(stackFrame);
      expect(await tables(db)).toEqual([]);
    } finally {
      await db.query(`DROP OWNED BY ${role}`);
      await db.query(`DROP ROLE ${role}`);
    }
  });

  it('says the tables belong to another role when adopting them as a non-owner, recording no migration', async () => {
    const db = await freshDatabase('cli-owner');
    expect((await runCli(['seed-legacy', '--images', '200'], db.url)).code).toBe(0);
    const role = `not_owner_${Date.now()}`;
    await db.query(`CREATE ROLE ${role} LOGIN PASSWORD 'pw'`);
    await db.query(`GRANT CREATE, USAGE ON SCHEMA public TO ${role}`);
    await db.query(
      `GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO ${role}`,
    );
    const url = new URL(db.url);
    url.username = role;
    url.password = 'pw';
    try {
      const { code, output } = await runCli(['migrate', '--baseline'], url.toString());
      expect(code).toBe(1);
      expect(output).toMatch(
        /The database refused: must be owner of table \w+\. Connect as the owner/,
      );
      expect(output).not.toMatch(stackFrame);
      const recorded = await db
        .query(`SELECT name FROM migrations WHERE name NOT LIKE '%LegacySchema%'`)
        .catch(() => []);
      expect(recorded).toEqual([]);
    } finally {
      await db.query(`DROP OWNED BY ${role}`);
      await db.query(`DROP ROLE ${role}`);
    }
  });

  it('explains an SSL failure in one line', async () => {
    const db = await freshDatabase('cli-ssl');
    const { code, output } = await runCli(['status'], `${db.url}?sslmode=require`);
    expect(code).toBe(3);
    expect(output).toMatch(
      /The SSL connection to the database failed: .*Check sslmode in DATABASE_URL/,
    );
    expect(output).not.toMatch(stackFrame);
  });

  it('explains a server that goes away mid-run, leaving nothing half-built', async () => {
    const db = await freshDatabase('cli-gone');
    const run = spawnCli(['seed-legacy', '--images', '3000000'], db.url);
    const admin = new Client({ connectionString: withDatabase(db.url, 'postgres') });
    await admin.connect();
    try {
      const database = new URL(db.url).pathname.slice(1);
      for (let killed = 0; killed === 0;) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        const { rowCount } = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
            WHERE datname = $1 AND application_name = 'pixcrawler-db seed-legacy' AND state = 'active'`,
          [database],
        );
        killed = rowCount ?? 0;
      }
    } finally {
      await admin.end();
    }
    const { code } = await run.exited;
    const output = run.output();
    expect(code).toBe(1);
    expect(output).toMatch(/The connection to the database was lost mid-run/);
    expect(output).not.toMatch(stackFrame);
    expect(await tables(db)).toEqual([]);
  });

  describe('seed-legacy --drop-existing', () => {
    it.each(['legacy', 'orm'])('refuses a migrated database (--flavour %s)', async (flavour) => {
      const db = await freshDatabase(`cli-seed-migrated-${flavour}`);
      await db.migrate();
      const { code, output } = await runCli(
        ['seed-legacy', '--flavour', flavour, '--images', '100', '--drop-existing'],
        db.url,
      );
      expect(code).toBe(1);
      expect(output).toContain('has applied migrations');
      expect(await tables(db)).toContain('export_jobs');
    });

    it('rebuilds its own ORM-made seed with --drop-existing', async () => {
      const db = await freshDatabase('cli-seed-orm-again');
      const seed = ['seed-legacy', '--flavour', 'orm', '--images', '100'];
      expect((await runCli(seed, db.url)).code).toBe(0);
      expect((await runCli([...seed, '--drop-existing'], db.url)).code).toBe(0);
    });

    it('refuses profiles it did not write', async () => {
      const db = await freshDatabase('cli-seed-foreign');
      expect((await runCli(['seed-legacy', '--images', '100'], db.url)).code).toBe(0);
      await db.query(
        `INSERT INTO profiles (id, email) VALUES ('5b1f3a52-3f8e-4e33-9c55-0a8f5a3e0d11', 'real@x.io')`,
      );
      const { code, output } = await runCli(
        ['seed-legacy', '--images', '100', '--drop-existing'],
        db.url,
      );
      expect(code).toBe(1);
      expect(output).toContain('rows the legacy builder did not write');
      const [row] = await db.query<{ n: string }>(
        `SELECT count(*) AS n FROM profiles WHERE email = 'real@x.io'`,
      );
      expect(Number(row.n)).toBe(1);
    });

    it('refuses under NODE_ENV=production', async () => {
      const db = await freshDatabase('cli-seed-production');
      expect((await runCli(['seed-legacy', '--images', '100'], db.url)).code).toBe(0);
      const { code, output } = await runCli(
        ['seed-legacy', '--images', '50', '--drop-existing'],
        db.url,
        {
          NODE_ENV: 'production',
        },
      );
      expect(code).toBe(1);
      expect(output).toContain('NODE_ENV is production');
      const [row] = await db.query<{ n: string }>(`SELECT count(*) AS n FROM images`);
      expect(Number(row.n)).toBe(100);
    });
  });
});
