import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { openDatabaseTarget, type DatabaseTarget } from '../local/database-target';
import {
  EmbeddedPostgresMissingError,
  EmbeddedPostgresStartError,
} from '../local/embedded-postgres';
import { InvalidDatabaseUrlError } from '../connection/database-url';
import { dataSourceOptions } from '../connection/data-source-options';
import { validateSettings } from '../settings';
import { operatorFailure } from './messages';
import { MigrationRefusedError } from '../migrator/migration-refused-error';
import { emitJson, ExitCode, say, setJsonMode, type CommandOutcome } from './output';
import { refusalMessage } from './reports/refusals';
import { checkDataSourceFile, DataSourceFileError, openDataSourceFile } from './data-source-file';

/**
 * An error whose message is written for the operator: the CLI prints it without a stack trace.
 * Say what is wrong and what to do about it.
 */
export class OperatorError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.differences,
  ) {
    super(message);
    this.name = 'OperatorError';
  }
}

export interface Session {
  target: DatabaseTarget;
  dataSource: DataSource;
}

/** `--data-source <file>` (a global option): the application's DataSource to work through. */
let dataSourceFile: string | undefined;

/**
 * Opens the database a command works on, says which one (password masked), and always closes it
 * again, stopping the embedded server if this process started it. That is the application's
 * DataSource with `--data-source`; otherwise DATABASE_URL, or the embedded default, with the
 * package's own options.
 */
export async function withSession<T>(
  work: (session: Session) => Promise<T>,
  options: { poolSize?: number } = {},
): Promise<T> {
  // Every PIXCRAWLER_* setting checked before a server starts or anything is written.
  validateSettings();
  const { target, dataSource } = dataSourceFile
    ? await openDataSourceFile(dataSourceFile, options).catch((error: unknown) => {
        throw error instanceof DataSourceFileError
          ? new OperatorError(error.message, error.exitCode)
          : error;
      })
    : await openPackageDataSource(options);
  say(`Database: ${target.label}`);
  try {
    await dataSource.initialize().catch((error: unknown) => {
      throw connectionFailure(error, target.label) ?? error;
    });
    if (dataSourceFile) {
      try {
        for (const note of checkDataSourceFile(dataSource, dataSourceFile)) say(`Note: ${note}`);
      } catch (error) {
        if (!(error instanceof DataSourceFileError)) throw error;
        throw new OperatorError(error.message, error.exitCode);
      }
    }
    return await work({ target, dataSource });
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
    await target.close();
  }
}

/** DATABASE_URL or the embedded server, with the package's recommended options. */
async function openPackageDataSource(options: { poolSize?: number }): Promise<Session> {
  const target = await openDatabaseTarget().catch((error: unknown) => {
    const operators = error instanceof InvalidDatabaseUrlError;
    const missingServer =
      error instanceof EmbeddedPostgresMissingError || error instanceof EmbeddedPostgresStartError;
    throw operators || missingServer
      ? new OperatorError(error.message, ExitCode.cannotConnect)
      : error;
  });
  const dataSource = new DataSource(
    dataSourceOptions({
      url: target.url,
      ...(options.poolSize ? { poolSize: options.poolSize } : {}),
    }),
  );
  return { target, dataSource };
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
  return reason
    ? new OperatorError(`Cannot connect to ${label}: ${reason}`, ExitCode.cannotConnect)
    : undefined;
}

let interrupted = false;
const interruption = new AbortController();

/**
 * Aborted on SIGINT or SIGTERM: a command passes it to what waits or loops (the migration lock,
 * the chain of migrations) so that an interrupted command stops there and applies nothing more.
 */
export function interruptSignal(): AbortSignal {
  return interruption.signal;
}

/**
 * Ctrl-C or SIGTERM: embedded-postgres' exit hook stops the server this process started, which
 * breaks the connections still open. Those failures are the interruption, not errors to report:
 * say it once and leave with 130, the shell's code for an interrupted command.
 */
const STOP_SIGNALS = ['SIGINT', 'SIGTERM'] as const;

function onInterrupt(signal: NodeJS.Signals): void {
  interrupted = true;
  process.exitCode = 130;
  console.error(`\nInterrupted (${signal}): stopping.`);
  interruption.abort(new Error(`interrupted by ${signal}`));
}

export function handleInterrupts(): void {
  for (const signal of STOP_SIGNALS) process.once(signal, onInterrupt);
  process.on('uncaughtException', (error) => {
    if (interrupted) return;
    // A connection's 'error' event (the server went away) arrives here, not in the action.
    const failure = operatorFailure(error);
    console.error(failure === undefined ? error : `\n${failure.message}`);
    process.exit(failure?.exitCode ?? ExitCode.differences);
  });
}

/**
 * For a command whose stop is its normal end (the worker): SIGTERM and Ctrl-C call `stop`
 * instead of counting as an interruption, so the command finishes its own way and exits 0.
 */
export function stopGracefullyOnSignals(stop: (signal: NodeJS.Signals) => void): void {
  for (const signal of STOP_SIGNALS) {
    process.removeListener(signal, onInterrupt);
    process.once(signal, stop);
  }
}

/** Turns what a command failed with into what the operator reads and the exit code. */
function reportFailure(error: unknown): number {
  if (error instanceof MigrationRefusedError) {
    console.error(`\n${refusalMessage(error.refusal)}`);
    emitJson({ ok: false, refusal: error.refusal });
    return ExitCode.differences;
  }
  if (error instanceof OperatorError) {
    console.error(`\n${error.message}`);
    emitJson({ ok: false, error: error.message });
    return error.exitCode;
  }
  const failure = operatorFailure(error);
  if (failure) {
    console.error(`\n${failure.message}`);
    emitJson({ ok: false, error: failure.message });
    return failure.exitCode;
  }
  console.error('\nFailed:', error instanceof Error ? (error.stack ?? error.message) : error);
  emitJson({ ok: false, error: error instanceof Error ? error.message : String(error) });
  return ExitCode.differences;
}

/**
 * Runs a command's action and turns its outcome into an exit code; under `--json` (a global
 * option) it prints the command's typed result as the only output on stdout.
 */
export function action<A extends unknown[]>(
  run: (...args: A) => Promise<CommandOutcome | number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const command = args.at(-1) as
      { optsWithGlobals?: () => { json?: boolean; dataSource?: string } } | undefined;
    const globals = command?.optsWithGlobals?.();
    setJsonMode(Boolean(globals?.json));
    dataSourceFile = globals?.dataSource;
    try {
      const done = (await run(...args)) ?? ExitCode.ok;
      const { exitCode, result } = typeof done === 'number' ? { exitCode: done, result: {} } : done;
      emitJson({ ok: exitCode === ExitCode.ok, ...(result as object) });
      process.exitCode = exitCode;
    } catch (error) {
      process.exitCode = interrupted ? ExitCode.interrupted : reportFailure(error);
    }
  };
}
