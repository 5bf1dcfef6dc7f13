/**
 * Connection strings: where they come from and how they are shown. A URL is never printed with
 * its password.
 */

/** `DATABASE_URL` at call time (not import time), or undefined when unset or blank. */
export function configuredDatabaseUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const url = env.DATABASE_URL?.trim();
  return url ? url : undefined;
}

/**
 * The URL with its password replaced by `***`. Anything that does not parse as a URL with a host
 * (`user:secret@host` without a scheme parses as scheme `user:`) is hidden whole.
 */
export function maskDatabaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '<unparsable database URL>';
  }
  if (!parsed.host) return '<unparsable database URL>';
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

/** The same server, another database: for creating and dropping throwaway databases. */
export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** DATABASE_URL is set but cannot name a PostgreSQL database. */
export class InvalidDatabaseUrlError extends Error {
  override name = 'InvalidDatabaseUrlError';
}

/** Checks the shape early so a typo fails with a clear message instead of a driver error. */
export function assertPostgresUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InvalidDatabaseUrlError(
      'DATABASE_URL is not a valid URL. Expected postgresql://user:password@host:5432/database',
    );
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    throw new InvalidDatabaseUrlError(
      `DATABASE_URL must start with postgresql:// (got ${parsed.protocol}//). ` +
        'Expected postgresql://user:password@host:5432/database',
    );
  }
}
