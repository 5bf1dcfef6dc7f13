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
 * Where `scheme://user:password@host/path` is ambiguous because the user-info was not
 * percent-encoded, or undefined when it reads one way only. The authority ends at the first
 * `/`, `?` or `#`, so an `@` after that point means a password holding one of them (the WHATWG
 * parser, and so the driver, would take the text before it for the host: a password sent to
 * DNS). The user-info is everything before the authority's last `@`; an `@` there is read
 * differently by libpq (psql, pg_dump end the user-info at the first `@`), and `[` or `]`, which
 * RFC 3986 keeps for an IPv6 host, make other parsers refuse the URL (Python's urlsplit).
 */
function ambiguousUserInfo(url: string): 'at-after-host' | 'reserved-in-user-info' | undefined {
  const authorityStart = url.indexOf('://') + 3;
  const rest = url.slice(authorityStart);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  if (authorityEnd !== -1 && rest.includes('@', authorityEnd)) return 'at-after-host';
  const userInfo = authority.slice(0, Math.max(authority.lastIndexOf('@'), 0));
  return /[@[\]]/.test(userInfo) ? 'reserved-in-user-info' : undefined;
}

/** Values of the secret query parameters, in a URL that is not parsed (`password=…`). */
const SECRET_PARAMETER_VALUE = /([?&](?:password|sslpassword|sslkey)=)[^&#]*/gi;

/**
 * The URL with every secret replaced by `***`: the password in the user-info and the values of
 * the `password`, `sslpassword` and `sslkey` query parameters. Anything that does not parse as
 * `scheme://…` (`user:secret@host` parses as scheme `user:`, `postgresql:/u:pw@h/db` has no
 * authority) is hidden whole. A URL whose user-info is ambiguous (an unencoded `@`, `/`, `?` or
 * `#` in the password) shows nothing between `://` and its last `@`, where any part of the
 * password may be.
 */
export function maskDatabaseUrl(url: string): string {
  const unparsable = '<unparsable database URL>';
  if (!HAS_AUTHORITY.test(url)) return unparsable;
  if (ambiguousUserInfo(url)) {
    const scheme = url.slice(0, url.indexOf('://'));
    const afterUserInfo = url.slice(url.lastIndexOf('@') + 1);
    return `${scheme}://***@${afterUserInfo.replace(SECRET_PARAMETER_VALUE, '$1***')}`;
  }
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
  | 'unencoded-user-info'
  | 'no-embedded-in-production'
  | 'missing';

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

const PERCENT_ENCODE =
  'Percent-encode the user name and password (encodeURIComponent): @ as %40, / as %2F, ' +
  '? as %3F, # as %23, [ as %5B, ] as %5D, % as %25. Nothing was connected to.';

/**
 * Checks the shape before any connection is attempted, so a typo fails with a clear message
 * (never showing the URL's secrets) instead of a driver error, and a malformed URL is never
 * sent anywhere: `postgresql:/user:pw@host/db` (one slash) would otherwise reach the driver,
 * which takes the whole string, password included, for a database name on the default host,
 * and `postgresql://u:x@S3cr3t/y@host/db` (a password with an unencoded `@` and `/`) would send
 * `S3cr3t` to DNS as the host name. `name` is what messages call the URL.
 */
export function assertPostgresUrl(url: string, name = 'DATABASE_URL'): void {
  const ambiguous = HAS_AUTHORITY.test(url) ? ambiguousUserInfo(url) : undefined;
  if (ambiguous) {
    const masked = maskDatabaseUrl(url);
    throw new InvalidDatabaseUrlError(
      (ambiguous === 'at-after-host'
        ? `${name} (${masked}) has an "@" after its host: a password holding "/", "?", ` +
          '"#" or "@" must be percent-encoded, or part of it is taken for the host name. '
        : `The user name or password in ${name} (${masked}) holds an "@", "[" or "]" ` +
          'that is not percent-encoded, which tools read differently. ') + PERCENT_ENCODE,
      'unencoded-user-info',
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidDatabaseUrlError(`${name} is not a valid URL. ${EXPECTED}`, 'not-a-url');
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new InvalidDatabaseUrlError(
      `${name} must start with postgresql:// (got ${parsed.protocol}//). ${EXPECTED}`,
      'not-postgresql',
    );
  }
  if (!HAS_AUTHORITY.test(url)) {
    throw new InvalidDatabaseUrlError(
      `${name} must start with ${parsed.protocol}// (two slashes before the user and host). ${EXPECTED}`,
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
        `The ${part} in ${name} is not valid percent-encoding: a % must start %XX with two ` +
          'hex digits of UTF-8. Percent-encode the value (encodeURIComponent; % itself is %25).',
        'bad-percent-encoding',
      );
    }
  }
}
