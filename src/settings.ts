/**
 * The PIXCRAWLER_* environment settings, read when a function is called and checked all at once
 * before anything is written: a typo in one must not surface half-way through a migration.
 */

/** A PIXCRAWLER_* setting holds a value it cannot mean. */
export class InvalidSettingError extends Error {
  override name = 'InvalidSettingError';
  constructor(
    readonly setting: string,
    readonly value: string,
    readonly expected: string,
  ) {
    super(`${setting} must be ${expected}, got "${value}"`);
  }
}

type Env = NodeJS.ProcessEnv;

const raw = (env: Env, name: string) => env[name]?.trim() || undefined;

/** A whole number >= 0, or the fallback when unset. */
export function wholeNumberSetting(name: string, fallback: number, env: Env = process.env): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(parsed)) {
    throw new InvalidSettingError(name, value, 'a whole number');
  }
  return parsed;
}

/** A PostgreSQL duration (`5s`, `500ms`, `1min`, or plain milliseconds). */
export function durationSetting(name: string, fallback: string, env: Env = process.env): string {
  const value = raw(env, name) ?? fallback;
  if (!/^\d+(ms|s|min)?$/.test(value)) {
    throw new InvalidSettingError(name, value, 'a PostgreSQL duration such as 5s or 500ms');
  }
  return value;
}

/** A TCP port, or undefined when unset. */
export function portSetting(name: string, env: Env = process.env): number | undefined {
  const value = raw(env, name);
  if (value === undefined) return undefined;
  const port = Number(value);
  if (!/^\d+$/.test(value) || port < 1 || port > 65535) {
    throw new InvalidSettingError(name, value, 'a port number (1-65535)');
  }
  return port;
}

/** Every setting the migrator and the embedded server read, checked; throws the first bad one. */
export function validateSettings(env: Env = process.env): void {
  durationSetting('PIXCRAWLER_LOCK_TIMEOUT', '5s', env);
  wholeNumberSetting('PIXCRAWLER_LOCK_RETRIES', 5, env);
  wholeNumberSetting('PIXCRAWLER_LOCK_RETRY_DELAY_MS', 1000, env);
  portSetting('PIXCRAWLER_EMBEDDED_PORT', env);
  wholeNumberSetting('PIXCRAWLER_REWRITE_LIMIT_ROWS', 100_000, env);
  wholeNumberSetting('PIXCRAWLER_REWRITE_LIMIT_MB', 64, env);
}
