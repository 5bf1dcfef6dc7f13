/**
 * Connection strings: where they come from and how they are shown. A URL is never printed with
 * its password.
 */

/** `DATABASE_URL` at call time (not import time), or undefined when unset or blank. */
export function configuredDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = env.DATABASE_URL?.trim();
  return url ? url : undefined;
}

/** Query parameters of a connection URL whose values are secrets (or point at one). */
const SECRET_PARAMETERS = new Set(['password', 'sslpassword', 'sslkey']);

/** `scheme://`: the form every connection URL must have (`postgresql:/x` is not one). */
const HAS_AUTHORITY = /^[a-z][a-z0-9+.-]*:\/\//i;

/**
 * The URL with every secret replaced by `***`: the password in the user-info and the values of
 * the `password`, `sslpassword` and `sslkey` query parameters. Anything that does not parse as
 * `scheme://…` (`user:secret@host` parses as scheme `user:`, `postgresql:/u:pw@h/db` has no
 * authority) is hidden whole.
 */
export function maskDatabaseUrl(url: string): string {
  const unparsable = '<unparsable database URL>';
  if (!HAS_AUTHORITY.test(url)) return unparsable;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return unparsable;
  }
  if (parsed.password) parsed.password = '***';
  for (const key of [...parsed.searchParams.keys()]) {
    if (SECRET_PARAMETERS.has(key.toLowerCase())) parsed.searchParams.set(key, '***');
  }
  // URLSearchParams writes `*` as is but encodes nothing else differently for these values.
  return parsed.toString();
}

/** The same server, another database: for creating and dropping throwaway databases. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** Why a URL cannot name a PostgreSQL database. */
export type InvalidDatabaseUrlReason =
  | 'not-a-url'
  | 'not-postgresql'
  | 'no-authority'
  | 'bad-percent-encoding'
  | 'no-embedded-in-production';

/** DATABASE_URL is set but cannot name a PostgreSQL database (or must be set and is not). */
export class InvalidDatabaseUrlError extends Error {
  override name = 'InvalidDatabaseUrlError';
  constructor(
    message: string,
    readonly reason: InvalidDatabaseUrlReason = 'not-a-url',
  ) {
    super(message);
  }
}

const EXPECTED = 'Expected postgresql://user:password@host:5432/database';

/**
 * Checks the shape before any connection is attempted, so a typo fails with a clear message
 * (never showing the URL's secrets) instead of a driver error, and a malformed URL is never
 * sent anywhere: `postgresql:/user:pw@host/db` (one slash) would otherwise reach the driver,
 * which takes the whole string, password included, for a database name on the default host.
 */
export function assertPostgresUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidDatabaseUrlError(`DATABASE_URL is not a valid URL. ${EXPECTED}`, 'not-a-url');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new InvalidDatabaseUrlError(
      `DATABASE_URL must start with postgresql:// (got ${parsed.protocol}//). ${EXPECTED}`,
      'not-postgresql',
    );
  }
  if (!HAS_AUTHORITY.test(url)) {
    throw new InvalidDatabaseUrlError(
      `DATABASE_URL must start with ${parsed.protocol}// (two slashes before the user and host). ${EXPECTED}`,
      'no-authority',
    );
  }
  for (const [part, value] of [
    ['user name', parsed.username],
    ['password', parsed.password],
  ] as const) {
    try {
      decodeURIComponent(value);
    } catch {
      throw new InvalidDatabaseUrlError(
        `The ${part} in DATABASE_URL is not valid percent-encoding: a % must start %XX with two ` +
          'hex digits of UTF-8. Percent-encode the value (encodeURIComponent; % itself is %25).',
        'bad-percent-encoding',
      );
    }
  }
}
