import { statementImpact, type ImpactContext } from '../../src/migrator/statement-impact';

const context = (overrides: Partial<ImpactContext> = {}): ImpactContext => ({
  foreignKeys: new Map([
    ['projects_user_id_profiles_id_fk', { table: 'projects', referencedTable: 'profiles' }],
    ['fk_images_crawl_job_id', { table: 'images', referencedTable: 'crawl_jobs' }],
  ]),
  indexes: new Map([['ix_image_crawl_job_id', 'images']]),
  references: new Map(),
  timezone: 'UTC',
  serverVersion: 180000,
  ...overrides,
});

const impact = (sql: string, ctx = context()) => {
  const { locks, scans, rewrites, recognised } = statementImpact(sql, ctx);
  return { locks: locks.map((l) => `${l.table} ${l.mode}`), scans, rewrites, recognised };
};

describe('statementImpact', () => {
  it.each([
    [
      'ALTER TABLE "projects" ADD CONSTRAINT "fk" FOREIGN KEY ("user_id") REFERENCES "profiles"("id") ON DELETE CASCADE NOT VALID',
      ['projects SHARE ROW EXCLUSIVE', 'profiles SHARE ROW EXCLUSIVE'],
      false,
    ],
    [
      'ALTER TABLE "images" VALIDATE CONSTRAINT "fk_images_crawl_job_id"',
      ['images SHARE UPDATE EXCLUSIVE', 'crawl_jobs ROW SHARE'],
      true,
    ],
    [
      'ALTER TABLE "projects" DROP CONSTRAINT "projects_user_id_profiles_id_fk"',
      ['projects ACCESS EXCLUSIVE', 'profiles ACCESS EXCLUSIVE'],
      false,
    ],
    [
      'ALTER TABLE "images" ADD CONSTRAINT "ck" CHECK ("width" >= 0) NOT VALID',
      ['images ACCESS EXCLUSIVE'],
      false,
    ],
    [
      'ALTER TABLE "images" ADD CONSTRAINT "ck" CHECK ("width" >= 0)',
      ['images ACCESS EXCLUSIVE'],
      true,
    ],
    [
      'CREATE UNIQUE INDEX CONCURRENTLY "ix" ON "profiles" ("email")',
      ['profiles SHARE UPDATE EXCLUSIVE'],
      true,
    ],
    ['CREATE INDEX "ix" ON "images" ("format")', ['images SHARE'], true],
    [
      'DROP INDEX CONCURRENTLY IF EXISTS "ix_image_crawl_job_id"',
      ['images SHARE UPDATE EXCLUSIVE'],
      false,
    ],
  ])('%s', (sql, locks, scans) => {
    expect(impact(sql)).toEqual({ locks, scans, rewrites: false, recognised: true });
  });

  it('a timestamp → timestamptz change rewrites only outside UTC or before PostgreSQL 12', () => {
    const sql =
      'ALTER TABLE "profiles" ALTER COLUMN "created_at" TYPE timestamp with time zone, ALTER COLUMN "updated_at" TYPE timestamp with time zone';
    expect(impact(sql).rewrites).toBe(false);
    expect(impact(sql, context({ timezone: 'Europe/Berlin' })).rewrites).toBe(true);
    expect(impact(sql, context({ serverVersion: 110000 })).rewrites).toBe(true);
  });

  it('a CREATE TABLE locks the tables its foreign keys reference, not itself', () => {
    const { locks, creates } = statementImpact(
      `CREATE TABLE "export_jobs" ("id" SERIAL NOT NULL, "crawl_job_id" integer,
         CONSTRAINT "a" FOREIGN KEY ("crawl_job_id") REFERENCES "crawl_jobs"("id"),
         CONSTRAINT "b" FOREIGN KEY ("user_id") REFERENCES "profiles"("id"))`,
      context(),
    );
    expect(creates).toBe('export_jobs');
    expect(locks.map((l) => `${l.table} ${l.mode}`)).toEqual([
      'crawl_jobs SHARE ROW EXCLUSIVE',
      'profiles SHARE ROW EXCLUSIVE',
    ]);
  });

  it('says so when it does not know a statement, assuming the strongest lock', () => {
    expect(impact('ALTER TABLE "images" SET UNLOGGED')).toEqual({
      locks: ['images ACCESS EXCLUSIVE'],
      scans: false,
      rewrites: false,
      recognised: false,
    });
    expect(impact('VACUUM images').recognised).toBe(false);
  });
});
