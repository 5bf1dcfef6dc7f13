import {
  assertPostgresUrl,
  configuredDatabaseUrl,
  maskDatabaseUrl,
  withDatabase,
} from '../../src/connection/database-url';
import { openDatabaseTarget } from '../../src/local/database-target';

describe('database URLs', () => {
  it('masks the password and keeps everything else', () => {
    expect(maskDatabaseUrl('postgresql://app:s3cret@db.example.com:5432/pixcrawler')).toBe(
      'postgresql://app:***@db.example.com:5432/pixcrawler',
    );
  });

  it('leaves a URL without a password as it is', () => {
    expect(maskDatabaseUrl('postgresql://postgres@127.0.0.1:5432/postgres')).toBe(
      'postgresql://postgres@127.0.0.1:5432/postgres',
    );
  });

  it('hides an unparsable URL whole rather than risk printing a secret', () => {
    expect(maskDatabaseUrl('app:s3cret@nowhere')).not.toContain('s3cret');
  });

  it('reads DATABASE_URL when the function is called, ignoring a blank value', () => {
    expect(configuredDatabaseUrl({ DATABASE_URL: '  ' })).toBeUndefined();
    expect(configuredDatabaseUrl({ DATABASE_URL: 'postgresql://x/y' })).toBe('postgresql://x/y');
  });

  it('points a URL at another database on the same server', () => {
    expect(withDatabase('postgresql://u:p@h:1/a?sslmode=require', 'b')).toBe(
      'postgresql://u:p@h:1/b?sslmode=require',
    );
  });

  it('rejects a URL that is not postgresql:// with the expected shape in the message', () => {
    expect(() => assertPostgresUrl('mysql://u@h/db')).toThrow(/must start with postgresql:\/\//);
    expect(() => assertPostgresUrl('not a url')).toThrow(/postgresql:\/\/user:password@host/);
    expect(() => assertPostgresUrl('postgres://u@h/db')).not.toThrow();
  });
});

describe('the database a command uses', () => {
  const saved = { url: process.env.DATABASE_URL, env: process.env.NODE_ENV };
  afterEach(() => {
    process.env.DATABASE_URL = saved.url;
    process.env.NODE_ENV = saved.env;
    if (saved.url === undefined) delete process.env.DATABASE_URL;
  });

  it('refuses the embedded development database in production when DATABASE_URL is unset', async () => {
    delete process.env.DATABASE_URL;
    process.env.NODE_ENV = 'production';
    await expect(openDatabaseTarget()).rejects.toThrow(
      /DATABASE_URL is unset and NODE_ENV is production/,
    );
  });

  it('uses DATABASE_URL as given and labels it with the password masked', async () => {
    process.env.DATABASE_URL = 'postgresql://app:s3cret@db.example.com:5432/pixcrawler';
    const target = await openDatabaseTarget();
    expect(target.url).toBe('postgresql://app:s3cret@db.example.com:5432/pixcrawler');
    expect(target.label).toBe('postgresql://app:***@db.example.com:5432/pixcrawler');
  });
});
