import { Client } from 'pg';
import {
  assertPostgresUrl,
  configuredDatabaseUrl,
  InvalidDatabaseUrlError,
  maskDatabaseUrl,
  withDatabase,
} from '../../src/connection/database-url';
import { dataSourceOptions } from '../../src/connection/data-source-options';
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

describe('secrets in database URLs', () => {
  it.each([
    ['the user-info password', 'postgresql://app:s3cret@db/x', 'postgresql://app:***@db/x'],
    [
      'a password parameter',
      'postgresql://app@db/x?password=s3cret',
      'postgresql://app@db/x?password=***',
    ],
    [
      'sslpassword and sslkey parameters',
      'postgresql://app@db/x?sslmode=require&sslpassword=s3cret&sslkey=%2Fkeys%2Fs3cret.key',
      'postgresql://app@db/x?sslmode=require&sslpassword=***&sslkey=***',
    ],
    [
      'a parameter in upper case',
      'postgresql://app@db/x?PASSWORD=s3cret',
      'postgresql://app@db/x?PASSWORD=***',
    ],
    [
      'both forms at once',
      'postgres://a:s3cret@db/x?password=s3cret',
      'postgres://a:***@db/x?password=***',
    ],
  ])('masks %s', (_label, url, masked) => {
    expect(maskDatabaseUrl(url)).toBe(masked);
  });

  it.each([
    'postgresql:/user:s3cret@host/db',
    'postgresql:user:s3cret@host/db',
    'user:s3cret@host/db',
    'postgresql://user:s3cret@[bad/db',
  ])('hides %s whole', (url) => {
    expect(maskDatabaseUrl(url)).toBe('<unparsable database URL>');
  });

  it.each([
    ['one slash', 'postgresql:/user:s3cret@host/db', /two slashes/],
    ['no slash', 'postgresql:user:s3cret@host/db', /two slashes/],
    [
      'a %-malformed password',
      'postgresql://user:%ff%fe@host/db',
      /password in DATABASE_URL is not valid percent-encoding/,
    ],
    [
      'a %-malformed user',
      'postgresql://%c3@host/db',
      /user name in DATABASE_URL is not valid percent-encoding/,
    ],
  ])(
    'refuses a URL with %s before connecting, without showing the secret',
    (_label, url, message) => {
      expect(() => assertPostgresUrl(url)).toThrow(message);
      try {
        assertPostgresUrl(url);
      } catch (error) {
        expect((error as Error).message).not.toContain('s3cret');
      }
    },
  );
});

describe('passwords that were not percent-encoded', () => {
  const percentEncode = /Percent-encode the user name and password .*@ as %40, \/ as %2F/;

  it.each([
    [
      'an "@" and a "/"',
      'postgresql://u:x@S3cr3t/y@127.0.0.1:5432/db',
      'postgresql://***@127.0.0.1:5432/db',
    ],
    [
      'a "/" alone',
      'postgresql://u:S3cr3t/y@127.0.0.1:5432/db',
      'postgresql://***@127.0.0.1:5432/db',
    ],
    ['a "?" after digits', 'postgresql://u:123?S3cr3t@db:5432/x', 'postgresql://***@db:5432/x'],
    ['a "#"', 'postgresql://u:123#S3cr3t@db/x', 'postgresql://***@db/x'],
    ['an "@" in the path', 'postgresql://u:S3cr3t@db/x@y', 'postgresql://***@y'],
    ['an "@" in the query', 'postgresql://db?user=S3cr3t@x', 'postgresql://***@x'],
    ['an "@" in the user-info', 'postgresql://u:S3cr3t@x@db/x', 'postgresql://***@db/x'],
    ['a "["', 'postgresql://u:S3cr3t[x@db/x', 'postgresql://***@db/x'],
    ['a "]"', 'postgresql://u:S3cr3t]x@db/x', 'postgresql://***@db/x'],
    [
      'a password parameter too',
      'postgresql://u:a/S3cr3t@db/x?sslpassword=S3cr3t',
      'postgresql://***@db/x?sslpassword=***',
    ],
  ])(
    'refuses %s before connecting, saying how to encode it and masking the URL',
    (_label, url, masked) => {
      expect(maskDatabaseUrl(url)).toBe(masked);
      let refusal: unknown;
      try {
        assertPostgresUrl(url);
      } catch (error) {
        refusal = error;
      }
      expect(refusal).toBeInstanceOf(InvalidDatabaseUrlError);
      expect((refusal as InvalidDatabaseUrlError).reason).toBe('unencoded-user-info');
      const { message } = refusal as Error;
      expect(message).toMatch(percentEncode);
      expect(message).toContain(`(${masked})`);
      expect(message).not.toContain('S3cr3t');
      expect(() => dataSourceOptions({ url })).toThrow(InvalidDatabaseUrlError);
    },
  );

  it('says the password in the S3cr3t URL is taken for the host name', () => {
    expect(() => assertPostgresUrl('postgresql://u:x@S3cr3t/y@127.0.0.1:5432/db')).toThrow(
      'DATABASE_URL (postgresql://***@127.0.0.1:5432/db) has an "@" after its host',
    );
  });

  it.each([
    [
      'a percent-encoded "@" and "/"',
      'postgresql://u:x%40S3cr3t%2Fy@127.0.0.1:5432/db',
      'postgresql://u:***@127.0.0.1:5432/db',
    ],
    [
      'every reserved character encoded',
      `postgresql://u:${encodeURIComponent('a@b/c?d#e[f]g%h:i')}@db/x`,
      'postgresql://u:***@db/x',
    ],
    ['an IPv6 host', 'postgresql://u:p@[::1]:5432/db', 'postgresql://u:***@[::1]:5432/db'],
    ['an IPv6 host without user', 'postgresql://[::1]/db', 'postgresql://[::1]/db'],
    [
      'a unix socket in the query',
      'postgresql:///db?host=/var/run/postgresql',
      'postgresql:///db?host=/var/run/postgresql',
    ],
    [
      'a unix socket as an encoded host',
      'postgresql://%2Fvar%2Frun%2Fpostgresql/db',
      'postgresql://%2Fvar%2Frun%2Fpostgresql/db',
    ],
    ['a ":" in the password', 'postgresql://u:a:b@db/x', 'postgresql://u:***@db/x'],
    [
      'sub-delimiters in the password',
      "postgresql://u:!$&'()*+,;=@db/x",
      'postgresql://u:***@db/x',
    ],
  ])('accepts %s', (_label, url, masked) => {
    expect(() => assertPostgresUrl(url)).not.toThrow();
    expect(maskDatabaseUrl(url)).toBe(masked);
  });

  it('gives the driver the host and the whole password of a percent-encoded URL', () => {
    // pg's own parsing, without connecting.
    const client = new Client({
      connectionString: 'postgresql://u:x%40S3cr3t%2Fy@127.0.0.1:5432/db',
    });
    expect([client.host, client.port, client.database]).toEqual(['127.0.0.1', 5432, 'db']);
    expect(client.password).toBe('x@S3cr3t/y');
  });
});

describe('dataSourceOptions', () => {
  it('refuses a url that is undefined or empty (DATABASE_URL unset) with its own message', () => {
    for (const url of [undefined, '']) {
      expect(() => dataSourceOptions({ url })).toThrow(
        /no database URL \(url is (undefined|empty): is DATABASE_URL set\?\)/,
      );
    }
    // Host settings (or replication) connect without a URL.
    expect(dataSourceOptions({ url: undefined, host: 'db' }).host).toBe('db');
    expect(dataSourceOptions({}).type).toBe('postgres');
  });

  it('refuses a URL without // before TypeORM or the driver sees it', () => {
    expect(() => dataSourceOptions({ url: 'postgresql:/app:s3cret@db/x' })).toThrow(/two slashes/);
    expect(dataSourceOptions({ url: 'postgresql://app:s3cret@db/x' }).url).toBe(
      'postgresql://app:s3cret@db/x',
    );
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
