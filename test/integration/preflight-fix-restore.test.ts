import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import type { DataSource } from 'typeorm';
import { buildLegacyDatabase } from '../../src/testing/legacy-builder';
import { buildAlembicDatabase } from '../../src/testing/alembic-database-builder';
import { LEGACY_TABLE_NAMES, PIXCRAWLER_TABLE_NAMES } from '../../src/upgrade/legacy-schema';
import {
  fixPreflightViolations,
  PreflightBackupError,
  restorePreflightBackup,
  runPreflight,
} from '../../src/upgrade/preflight';
import { runCli } from '../helpers/cli';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

type Snapshot = Map<string, string>;

interface BackupLine {
  action: 'delete' | 'update';
  table: string;
  reason: string;
  row: Record<string, unknown> & { id: string | number };
  after?: Record<string, unknown>;
}

/** Every row of the five tables (or of `tables`), as `table:id` → its JSON. */
async function snapshot(
  db: TestDatabase,
  tables: readonly string[] = LEGACY_TABLE_NAMES,
): Promise<Snapshot> {
  const rows = new Map<string, string>();
  for (const table of tables) {
    for (const row of await db.query<{ id: string; json: string }>(
      `SELECT id::text AS id, to_jsonb(t)::text AS json FROM ${table} t`,
    )) {
      rows.set(`${table}:${row.id}`, row.json);
    }
  }
  return rows;
}

/** Keys whose rows differ between two snapshots (changed, gone or new). */
function changedKeys(before: Snapshot, after: Snapshot): string[] {
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((key) => before.get(key) !== after.get(key)).sort();
}

/** The row lines of a backup (between its header and its end line), parsed. */
const backupRows = (file: string): BackupLine[] =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .slice(1, -1)
    .map((line) => JSON.parse(line) as BackupLine);

const backupKeys = (file: string) =>
  new Set(backupRows(file).map((line) => `${line.table}:${line.row.id}`));

describe('preflight --fix under concurrent writes, and --restore', () => {
  let db: TestDatabase;
  let ds: DataSource;
  let backupDir: string;

  beforeAll(async () => {
    db = await createTestDatabase('preflight-fix-restore');
    await buildLegacyDatabase(db.url, { images: 400, broken: 2 });
    ds = await db.connect();
    backupDir = mkdtempSync(path.join(tmpdir(), 'pixcrawler-fix-'));
  });
  afterAll(async () => {
    await db.drop();
    rmSync(backupDir, { recursive: true, force: true });
  });

  it('an unwritable --backup-dir refuses before anything changes, leaving no file', async () => {
    const before = await snapshot(db);
    // A directory that cannot be created: its parent is a file (chmod would not stop root).
    const blocker = path.join(backupDir, 'a-file');
    await writeFile(blocker, 'not a directory');
    const refusal = fixPreflightViolations(ds, { backupDir: path.join(blocker, 'backups') });
    await expect(refusal).rejects.toBeInstanceOf(PreflightBackupError);
    await expect(refusal).rejects.toMatchObject({ problem: 'backup-dir-not-writable' });
    expect(await snapshot(db)).toEqual(before);
    expect(await readdir(backupDir)).toEqual(['a-file']);
    const { code, output } = await runCli(
      ['preflight', '--fix', '--backup-dir', path.join(blocker, 'backups')],
      db.url,
    );
    expect(code).toBe(1);
    expect(output).toContain(`Cannot write the backup in ${path.join(blocker, 'backups')}`);
    expect(output).not.toMatch(/^\s+at /m);
    expect(await snapshot(db)).toEqual(before);
  });

  it('backs up every row it changes even when another session writes during the repair, and --restore puts them back', async () => {
    // Healthy rows another session will break while the fix is in its DELETE phase.
    const [{ id: jobId }] = await db.query<{ id: number }>(
      `SELECT id FROM crawl_jobs WHERE progress BETWEEN 0 AND 100 AND total_images >= 0
          AND status IN ('pending', 'running', 'completed') ORDER BY id LIMIT 1`,
    );
    const [{ id: imageId }] = await db.query<{ id: number }>(
      `SELECT i.id FROM images i JOIN crawl_jobs c ON c.id = i.crawl_job_id
        WHERE i.width >= 0 ORDER BY i.id LIMIT 1`,
    );
    const before = await snapshot(db);

    // The fix pauses at its first DELETE until the test lets it go (an advisory lock).
    await db.query(`CREATE FUNCTION pause_fix() RETURNS trigger LANGUAGE plpgsql AS
      $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$`);
    await db.query(
      `CREATE TRIGGER pause_fix BEFORE DELETE ON images FOR EACH STATEMENT EXECUTE FUNCTION pause_fix()`,
    );
    const writer = new Client({ connectionString: db.url });
    await writer.connect();
    let fixed: Awaited<ReturnType<typeof fixPreflightViolations>>;
    try {
      await writer.query('BEGIN');
      await writer.query('SELECT pg_advisory_xact_lock(4242)');
      const fixing = fixPreflightViolations(ds, { backupDir });
      for (;;) {
        const [waiting] = await db.query<{ n: string }>(
          `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`,
        );
        if (Number(waiting.n) > 0) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      // Written and committed while the fix waits inside its transaction, past its backup.
      await writer.query('COMMIT');
      await db.query('UPDATE crawl_jobs SET progress = 777 WHERE id = $1', [jobId]);
      await db.query('UPDATE images SET width = -42 WHERE id = $1', [imageId]);
      fixed = await fixing;
    } finally {
      await writer.end();
      await db.query('DROP TRIGGER IF EXISTS pause_fix ON images');
      await db.query('DROP FUNCTION IF EXISTS pause_fix()');
    }

    const expectedWithoutFix = new Map(before);
    const concurrent = await snapshot(db);
    for (const key of [`crawl_jobs:${jobId}`, `images:${imageId}`]) {
      expectedWithoutFix.set(key, concurrent.get(key)!);
    }
    // The concurrent writes stand: the fix neither repaired nor backed them up...
    const [job] = await db.query<{ progress: number }>(
      'SELECT progress FROM crawl_jobs WHERE id = $1',
      [jobId],
    );
    const [image] = await db.query<{ width: number }>('SELECT width FROM images WHERE id = $1', [
      imageId,
    ]);
    expect(job.progress).toBe(777);
    expect(image.width).toBe(-42);
    // ...and every row the fix did change is in its backup.
    const inBackup = backupKeys(fixed.backupFile);
    const changed = changedKeys(expectedWithoutFix, concurrent);
    expect(changed.length).toBeGreaterThan(0);
    for (const key of changed) expect(inBackup).toContain(key);
    expect(inBackup).not.toContain(`crawl_jobs:${jobId}`);
    expect(inBackup).not.toContain(`images:${imageId}`);
    // Preflight still sees the two rows broken after the fix.
    const after = Object.fromEntries(
      (await runPreflight(ds)).broken.map((r) => [r.rule.name, r.count]),
    );
    expect(after).toEqual({ ck_crawl_jobs_progress: 1, ck_images_width: 1 });

    // --restore, through the CLI: back to the state before the fix (with the concurrent writes).
    const { code, output } = await runCli(['preflight', '--restore', fixed.backupFile], db.url);
    expect(output).toContain('inserted');
    expect(code).toBe(0);
    expect(changedKeys(expectedWithoutFix, await snapshot(db))).toEqual([]);
  });

  it('--restore refuses a backup it cannot apply, changing nothing', async () => {
    const fixed = await fixPreflightViolations(ds, { backupDir });
    const state = await snapshot(db);
    // The deleted rows exist again after one restore: a second one must refuse, whole.
    await restorePreflightBackup(ds, fixed.backupFile);
    const restored = await snapshot(db);
    await expect(restorePreflightBackup(ds, fixed.backupFile)).rejects.toMatchObject({
      problem: 'row-exists',
    });
    expect(await snapshot(db)).toEqual(restored);
    expect(state).not.toEqual(restored);
    await expect(
      restorePreflightBackup(ds, path.join(backupDir, 'nope.jsonl')),
    ).rejects.toMatchObject({
      problem: 'backup-unreadable',
    });
    const { code, output } = await runCli(['preflight', '--restore', __filename], db.url);
    expect(code).toBe(1);
    expect(output).toMatch(/line 1: not JSON/);
    expect(output).not.toMatch(/^\s+at /m);
  });
});

/** A backup file's lines: its header, its row lines (JSON text each), its end line. */
function backupParts(file: string): { header: string; rows: string[]; end: string } {
  const lines = readFileSync(file, 'utf8').trim().split('\n');
  return { header: lines[0], rows: lines.slice(1, -1), end: lines.at(-1)! };
}

/**
 * Writes a backup of `header` and `rows` with a correct end line: SHA-256 always, HMAC with
 * `key`. What anyone who can write files (and, without the key, not sign them) can produce.
 */
function writeBackup(file: string, header: string, rows: string[], key?: string): string {
  const body = [header, ...rows].map((line) => `${line}\n`).join('');
  const end = {
    pixcrawlerBackupEnd: 1,
    lines: rows.length,
    sha256: createHash('sha256').update(body).digest('hex'),
    ...(key ? { hmacSha256: createHmac('sha256', key).update(body).digest('hex') } : {}),
  };
  writeFileSync(file, `${body}${JSON.stringify(end)}\n`);
  return file;
}

describe('preflight --restore refuses forged and misapplied backups, changing nothing', () => {
  const KEY = 'operator-kept-key-0123456789abcdef';
  let db: TestDatabase;
  let other: TestDatabase;
  let ds: DataSource;
  let dir: string;
  let beforeFix: Snapshot;
  let afterFix: Snapshot;
  let genuine: string;
  let parts: ReturnType<typeof backupParts>;
  /** The row lines, parsed; `at(i)` is line i + 2 of the file. */
  let rows: BackupLine[];

  /** A forged copy of the genuine backup: its row lines edited, its end line made to match. */
  const forge = (name: string, edit: (rows: string[]) => string[], key?: string) =>
    writeBackup(path.join(dir, `${name}.jsonl`), parts.header, edit([...parts.rows]), key);
  const lineOf = (find: (row: BackupLine) => boolean) => rows.findIndex(find) + 2;

  async function expectRefused(
    file: string,
    refusal: { problem: string; line: number; message: RegExp },
  ): Promise<void> {
    const error = await restorePreflightBackup(ds, file).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PreflightBackupError);
    expect(error).toMatchObject({ problem: refusal.problem, line: refusal.line });
    expect((error as Error).message).toMatch(refusal.message);
    expect((error as Error).message).toMatch(new RegExp(`^line ${refusal.line}: `));
    expect(await snapshot(db)).toEqual(afterFix);
  }

  beforeAll(async () => {
    db = await createTestDatabase('preflight-forged');
    await buildLegacyDatabase(db.url, { images: 200, broken: 2 });
    ds = await db.connect();
    dir = mkdtempSync(path.join(tmpdir(), 'pixcrawler-forged-'));
    beforeFix = await snapshot(db);
    genuine = (await fixPreflightViolations(ds, { backupDir: dir })).backupFile;
    afterFix = await snapshot(db);
    parts = backupParts(genuine);
    rows = parts.rows.map((line) => JSON.parse(line) as BackupLine);
  });
  afterAll(async () => {
    await db.drop();
    await other?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes a header naming the database, the value --fix wrote beside each changed row, and an end line', async () => {
    const header = JSON.parse(parts.header) as Record<string, unknown>;
    const [identity] = await db.query<{ system: string; name: string; oid: number }>(
      `SELECT (SELECT system_identifier::text FROM pg_control_system()) AS system, datname AS name,
              oid::int AS oid FROM pg_database WHERE datname = current_database()`,
    );
    expect(header).toMatchObject({
      pixcrawlerBackup: 1,
      database: { systemIdentifier: identity.system, name: identity.name, oid: identity.oid },
      signature: 'none',
    });
    const role = rows.find((row) => row.reason === 'ck_profiles_role')!;
    expect(role).toMatchObject({ row: { role: 'superuser' }, after: { role: 'user' } });
    const log = rows.find((row) => row.reason === 'fk_activity_logs_user_id')!;
    expect(log.after).toEqual({ user_id: null });
    expect(JSON.parse(parts.end)).toMatchObject({ pixcrawlerBackupEnd: 1, lines: rows.length });
  });

  it('refuses the hand-written admin line of the issue, naming line 1, and changes nothing', async () => {
    const victim = rows.find((row) => row.table === 'profiles')!;
    const file = path.join(dir, 'hand-written.jsonl');
    writeFileSync(
      file,
      `${JSON.stringify({ action: 'update', table: 'profiles', row: { id: victim.row.id, role: 'admin', email: 'attacker@evil' } })}\n`,
    );
    await expectRefused(file, { problem: 'old-backup', line: 1, message: /header/ });
    const { code, output } = await runCli(['preflight', '--restore', file], db.url);
    expect(code).toBe(1);
    expect(output).toContain(`${file} was written by a preflight --fix from before backups`);
    expect(output).toContain('Put its rows back by hand');
    expect(output).not.toMatch(/^\s+at /m);
    expect(await snapshot(db)).toEqual(afterFix);
  });

  it('refuses the admin line slipped into a genuine backup with its digest recomputed', async () => {
    const n = lineOf((row) => row.reason === 'ck_profiles_role');
    const forged = forge('admin', (lines) => {
      const line = JSON.parse(lines[n - 2]) as BackupLine;
      line.row = { ...line.row, role: 'admin', email: 'attacker@evil' };
      lines[n - 2] = JSON.stringify(line);
      return lines;
    });
    await expectRefused(forged, {
      problem: 'invalid-backup',
      line: n,
      message: /has role "admin", which does not break ck_profiles_role: --fix never changed it/,
    });
    const { code, output } = await runCli(['preflight', '--restore', forged], db.url);
    expect(code).toBe(1);
    expect(output).toContain(`${forged} is not a backup written by preflight --fix (line ${n}: `);
    const [profile] = await db.query<{ role: string; email: string }>(
      'SELECT role, email FROM profiles WHERE id = $1',
      [rows[n - 2].row.id],
    );
    expect(profile).toMatchObject({ role: 'user' });
    expect(profile.email).not.toBe('attacker@evil');
  });

  const lineCases: Array<[string, (lines: string[]) => string[], () => number, RegExp]> = [
    [
      'an unknown column',
      (lines) => {
        const n = lineOf((row) => row.table === 'profiles');
        const line = JSON.parse(lines[n - 2]) as BackupLine;
        line.row.is_superuser = true;
        lines[n - 2] = JSON.stringify(line);
        return lines;
      },
      () => lineOf((row) => row.table === 'profiles'),
      /row: profiles has no column "is_superuser"/,
    ],
    [
      'a line with only an id',
      (lines) => {
        const n = lineOf((row) => row.action === 'delete');
        const line = JSON.parse(lines[n - 2]) as BackupLine;
        lines[n - 2] = JSON.stringify({ ...line, row: { id: line.row.id } });
        return lines;
      },
      () => lineOf((row) => row.action === 'delete'),
      /row: lacks images's crawl_job_id, original_url, filename/,
    ],
    [
      'an id of the wrong type',
      (lines) => {
        const n = lineOf((row) => row.table === 'images');
        const line = JSON.parse(lines[n - 2]) as BackupLine;
        line.row.id = 'ffffffff-0000-4000-8000-000000000001';
        lines[n - 2] = JSON.stringify(line);
        return lines;
      },
      () => lineOf((row) => row.table === 'images'),
      /row: images.id is integer, not "ffffffff-/,
    ],
    [
      'a row for another table',
      (lines) => {
        const n = lineOf((row) => row.table === 'images');
        const line = JSON.parse(lines[n - 2]) as BackupLine;
        lines[n - 2] = JSON.stringify({ ...line, table: 'projects' });
        return lines;
      },
      () => lineOf((row) => row.table === 'images'),
      /row: projects has no column "width"/,
    ],
    [
      'a __proto__ key in the row',
      (lines) => {
        const n = lineOf((row) => row.table === 'profiles');
        const line = JSON.stringify(JSON.parse(lines[n - 2]));
        lines[n - 2] = line.replace('"row":{', '"row":{"__proto__":{"role":"admin"},');
        return lines;
      },
      () => lineOf((row) => row.table === 'profiles'),
      /row has a "__proto__" key/,
    ],
    [
      'a constructor key in the line',
      (lines) => {
        const n = lineOf((row) => row.table === 'profiles');
        lines[n - 2] = lines[n - 2].replace(/^\{/, '{"constructor":{"prototype":{}},');
        return lines;
      },
      () => lineOf((row) => row.table === 'profiles'),
      /the line has a "constructor" key/,
    ],
    [
      'a new row in a table --fix never deletes from',
      (lines) => {
        const n = lineOf((row) => row.table === 'profiles');
        const line = JSON.parse(lines[n - 2]) as BackupLine;
        const row = { ...line.row, id: '11111111-0000-4000-8000-000000000001', role: 'admin' };
        lines[n - 2] = JSON.stringify({ action: 'delete', table: 'profiles', reason: 'x', row });
        return lines;
      },
      () => lineOf((row) => row.table === 'profiles'),
      /--fix never deletes profiles rows/,
    ],
    [
      'a new row attached to a parent that exists',
      (lines) => {
        const n = lineOf((row) => row.table === 'images');
        const line = JSON.parse(lines[n - 2]) as BackupLine;
        lines[n - 2] = JSON.stringify({
          ...line,
          row: { ...line.row, id: 999_999, crawl_job_id: 1 },
        });
        return lines;
      },
      () => lineOf((row) => row.table === 'images'),
      /images 999999 has its crawl_jobs row: --fix deletes only rows whose parent is missing/,
    ],
    [
      'the same row twice',
      (lines) => [...lines, lines[0]],
      () => rows.length + 2,
      /the same row as line 2/,
    ],
  ];

  it.each(lineCases)(
    'refuses %s as an invalid backup, naming its line',
    async (name, edit, line, message) => {
      await expectRefused(forge(name.replace(/\W+/g, '-'), edit), {
        problem: 'invalid-backup',
        line: line(),
        message,
      });
    },
  );

  it('refuses a file changed without its end line matching, and one cut short', async () => {
    const edited = path.join(dir, 'edited.jsonl');
    const line = JSON.parse(parts.rows[0]) as BackupLine;
    const changed = JSON.stringify({ ...line, reason: `${line.reason} (edited)` });
    writeFileSync(
      edited,
      [parts.header, changed, ...parts.rows.slice(1), parts.end, ''].join('\n'),
    );
    await expectRefused(edited, {
      problem: 'invalid-backup',
      line: rows.length + 2,
      message: /do not match its SHA-256: the file was changed after --fix wrote it/,
    });
    const cut = path.join(dir, 'cut.jsonl');
    writeFileSync(cut, [parts.header, ...parts.rows.slice(0, 3), ''].join('\n'));
    await expectRefused(cut, { problem: 'invalid-backup', line: 4, message: /cut short/ });
  });

  it('refuses a backup from another database', async () => {
    other = await createTestDatabase('preflight-other');
    await buildLegacyDatabase(other.url, { images: 200, broken: 2 });
    const theirs = await fixPreflightViolations(await other.connect(), { backupDir: dir });
    await expectRefused(theirs.backupFile, {
      problem: 'other-database',
      line: 1,
      message: new RegExp(`written on database "${other.name}" .* this is "${db.name}"`),
    });
    const { code, output } = await runCli(['preflight', '--restore', theirs.backupFile], db.url);
    expect(code).toBe(1);
    expect(output).toContain(
      `Refused to restore ${theirs.backupFile}: it is a backup of another database`,
    );
    expect(await snapshot(db)).toEqual(afterFix);
  });

  it('refuses to reset a row changed since the fix, and resets it with --force-overwrite-changed, naming it', async () => {
    const n = lineOf((row) => row.reason === 'ck_profiles_role');
    const { id } = rows[n - 2].row;
    await db.query(`UPDATE profiles SET role = 'moderator' WHERE id = $1`, [id]);
    afterFix = await snapshot(db);
    await expectRefused(genuine, {
      problem: 'row-changed',
      line: n,
      message: new RegExp(
        `profiles "${id}" has role "moderator" now, not "user" as --fix wrote it`,
      ),
    });
    const refused = await runCli(['preflight', '--restore', genuine], db.url);
    expect(refused.code).toBe(1);
    expect(refused.output).toContain(`(line ${n}; changed since the fix). Nothing was restored.`);
    expect(refused.output).toContain('run again with --force-overwrite-changed');
    expect(await snapshot(db)).toEqual(afterFix);

    const { code, output } = await runCli(
      ['preflight', '--restore', genuine, '--force-overwrite-changed'],
      db.url,
    );
    expect(output).toContain(
      `overwrote profiles "${id}" (line ${n}) because of --force-overwrite-changed: role was ` +
        '"moderator", not "user" as --fix wrote it; now "superuser"',
    );
    expect(output.match(/overwrote /g)).toHaveLength(1);
    expect(code).toBe(0);
    expect(changedKeys(beforeFix, await snapshot(db))).toEqual([]);
  });

  it('signs with the operator key: a forged line, no key or another key is refused; the genuine file restores exactly', async () => {
    const before = await snapshot(db);
    const env = { PIXCRAWLER_BACKUP_KEY: KEY };
    const fixed = await runCli(['preflight', '--fix', '--backup-dir', dir], db.url, env);
    expect(fixed.output).toContain('signed with the key in PIXCRAWLER_BACKUP_KEY');
    const signed = /Backup of every row deleted or changed: (\S+)/.exec(fixed.output)![1];
    afterFix = await snapshot(db);
    expect(afterFix).not.toEqual(before);

    const { header, rows: lines } = backupParts(signed);
    const n = lines.findIndex((line) => line.includes('"ck_profiles_role"'));
    const admin = lines.map((line, i) => (i === n ? line.replace('"superuser"', '"admin"') : line));
    const forged = writeBackup(path.join(dir, 'signed-forged.jsonl'), header, admin);
    const refusals: Array<[string, string | undefined, RegExp, number]> = [
      [signed, undefined, /the backup is signed, and no key was given to check it/, 1],
      [signed, 'another key', /the HMAC-SHA256 does not match/, lines.length + 2],
      [forged, KEY, /the HMAC-SHA256 does not match/, lines.length + 2],
      [genuine, KEY, /the backup is not signed, and a key was given/, 1],
    ];
    for (const [file, key, message, line] of refusals) {
      const refusal = restorePreflightBackup(ds, file, { key });
      await expect(refusal).rejects.toMatchObject({ problem: 'bad-signature', line });
      await expect(refusal).rejects.toThrow(message);
      expect(await snapshot(db)).toEqual(afterFix);
    }
    const refused = await runCli(['preflight', '--restore', signed], db.url);
    expect(refused.output).toContain(
      `Refused to restore ${signed}: line 1: the backup is signed, and no key was given to check it. ` +
        'Nothing was restored. PIXCRAWLER_BACKUP_KEY must hold the key',
    );
    expect(refused.code).toBe(1);
    expect(await snapshot(db)).toEqual(afterFix);

    const { code, output } = await runCli(['preflight', '--restore', signed], db.url, env);
    expect(output).toContain('signature checked');
    expect(output).not.toContain(KEY);
    expect(fixed.output).not.toContain(KEY);
    expect(code).toBe(0);
    expect(changedKeys(before, await snapshot(db))).toEqual([]);
  });
});

describe('preflight --fix then --restore on a database Alembic built (all seven tables)', () => {
  it('restores every row exactly, job tables included', async () => {
    const db = await createTestDatabase('preflight-alembic-restore');
    const dir = mkdtempSync(path.join(tmpdir(), 'pixcrawler-alembic-'));
    try {
      await buildAlembicDatabase(db.url, { images: 200, broken: 2 });
      const ds = await db.connect();
      const before = await snapshot(db, PIXCRAWLER_TABLE_NAMES);
      const fixed = await fixPreflightViolations(ds, { backupDir: dir, key: 'k' });
      const tables = new Set(backupRows(fixed.backupFile).map((row) => row.table));
      expect(tables).toContain('export_jobs');
      expect(tables).toContain('validation_jobs');
      expect(await snapshot(db, PIXCRAWLER_TABLE_NAMES)).not.toEqual(before);
      const restored = await restorePreflightBackup(ds, fixed.backupFile, { key: 'k' });
      expect(restored.overwritten).toEqual([]);
      expect(changedKeys(before, await snapshot(db, PIXCRAWLER_TABLE_NAMES))).toEqual([]);
    } finally {
      await db.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
