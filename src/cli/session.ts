import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { openDatabaseTarget, type DatabaseTarget } from '../db/database-target';
import { dataSourceOptions } from '../db/data-source-options';

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
export async function withSession<T>(work: (session: Session) => Promise<T>): Promise<T> {
  const target = await openDatabaseTarget();
  console.log(`Database: ${target.label}`);
  const dataSource = new DataSource(dataSourceOptions({ url: target.url }));
  try {
    await dataSource.initialize();
    return await work({ target, dataSource });
  } finally {
    if (dataSource.isInitialized) await dataSource.destroy();
    await target.close();
  }
}

/** Runs a command's action and turns its outcome into an exit code. */
export function action<A extends unknown[]>(
  run: (...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      process.exitCode = (await run(...args)) ?? 0;
    } catch (error) {
      if (error instanceof OperatorError) {
        console.error(`\n${error.message}`);
        process.exitCode = error.exitCode;
      } else {
        console.error('\nFailed:', error instanceof Error ? (error.stack ?? error.message) : error);
        process.exitCode = 1;
      }
    }
  };
}
