import { QueryFailedError } from 'typeorm';
import { legacySizes } from '../../src/testing/legacy-builder';
import { LEGACY_TABLES, legacyTableDdl } from '../../src/upgrade/legacy-schema';
import { isLockTimeout } from '../../src/migrator/migrator';

describe('lock timeouts', () => {
  it('recognises lock_not_available (55P03) from pg and from TypeORM, and nothing else', () => {
    const pgError = Object.assign(new Error('canceling statement due to lock timeout'), {
      code: '55P03',
    });
    expect(isLockTimeout(pgError)).toBe(true);
    expect(isLockTimeout(new QueryFailedError('ALTER TABLE x', [], pgError))).toBe(true);
    expect(isLockTimeout(Object.assign(new Error('deadlock'), { code: '40P01' }))).toBe(false);
    expect(isLockTimeout(undefined)).toBe(false);
  });
});

describe('the legacy schema description', () => {
  it('creates each table with PostgreSQL default constraint names and serial ids', () => {
    const profiles = legacyTableDdl(LEGACY_TABLES[0]);
    expect(profiles).toContain('CONSTRAINT "profiles_pkey" PRIMARY KEY ("id")');
    expect(profiles).toContain('CONSTRAINT "profiles_email_key" UNIQUE ("email")');
    expect(legacyTableDdl(LEGACY_TABLES[3])).toContain('"id" serial NOT NULL');
  });

  it('lists parents before children', () => {
    expect(LEGACY_TABLES.map((t) => t.name)).toEqual([
      'profiles',
      'projects',
      'crawl_jobs',
      'images',
      'activity_logs',
    ]);
  });
});

describe('legacy database sizes', () => {
  it('scale with the images: many images per crawl job and many logs per user', () => {
    expect(legacySizes({ images: 1_000_000 })).toEqual({
      profiles: 500,
      projects: 1000,
      crawlJobs: 5000,
      images: 1_000_000,
      activityLogs: 500_000,
    });
    expect(legacySizes({ images: 10, profiles: 3 }).profiles).toBe(3);
  });
});
