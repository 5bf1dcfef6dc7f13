import { DataSource, MigrationExecutor, type Logger } from 'typeorm';
import { withMigrationLock } from './migration-lock';

/**
 * What the CLI adds around TypeORM's migration runner: one migrator at a time (an advisory
 * lock), each migration reported as it completes, and reverts that respect `transaction = false`.
 */

export interface MigrationState {
  name: string;
  applied: boolean;
  /** Recorded as applied in the database but unknown to this code (a newer release ran it?). */
  unknown?: boolean;
}

export interface MigratorEvents {
  /** Another process holds the migration lock; this one waits for it. */
  waiting?: () => void;
  /** The migrations about to run, in order (empty when nothing is pending). */
  pending?: (names: string[]) => void;
  finished?: (name: string, milliseconds: number) => void;
}

/** Every migration this code knows, oldest first, plus any applied one it does not know. */
export async function migrationStates(dataSource: DataSource): Promise<MigrationState[]> {
  const executed = await new MigrationExecutor(dataSource).getExecutedMigrations();
  const executedNames = new Set(executed.map((m) => m.name));
  const known = dataSource.migrations.map((m) => m.name ?? m.constructor.name);
  const knownNames = new Set(known);
  return [
    ...known.map((name) => ({ name, applied: executedNames.has(name) })),
    ...executed
      .filter((m) => !knownNames.has(m.name))
      .map((m) => ({ name: m.name, applied: true, unknown: true })),
  ];
}

export async function pendingMigrations(dataSource: DataSource): Promise<string[]> {
  return (await migrationStates(dataSource)).filter((m) => !m.applied).map((m) => m.name);
}

/**
 * TypeORM reports a finished migration only through its logger; this one turns those messages
 * into events and stays silent otherwise.
 */
function progressLogger(events: MigratorEvents): Logger {
  let last = Date.now();
  const success = /^Migration (\S+) has been (?:\(fake\) )?(?:executed|reverted) successfully/;
  return {
    logQuery: () => undefined,
    logQueryError: () => undefined,
    logQuerySlow: () => undefined,
    logMigration: () => undefined,
    log: () => undefined,
    logSchemaBuild: (message: string) => {
      const match = success.exec(message);
      if (match) {
        const now = Date.now();
        events.finished?.(match[1], now - last);
        last = now;
      }
    },
  };
}

async function withProgressLogger<T>(
  dataSource: DataSource,
  events: MigratorEvents,
  work: () => Promise<T>,
): Promise<T> {
  const original = dataSource.logger;
  Object.assign(dataSource, { logger: progressLogger(events) });
  try {
    return await work();
  } finally {
    Object.assign(dataSource, { logger: original });
  }
}

/**
 * Runs every pending migration, each in its own transaction unless it opts out, holding the
 * migration lock throughout. Returns the names applied: none when another process applied them
 * while this one waited.
 */
export async function runPendingMigrations(
  dataSource: DataSource,
  url: string,
  events: MigratorEvents = {},
): Promise<string[]> {
  return withMigrationLock(
    url,
    async () => {
      const pending = await pendingMigrations(dataSource);
      events.pending?.(pending);
      if (pending.length === 0) return [];
      const executor = new MigrationExecutor(dataSource);
      executor.transaction = 'each';
      const applied = await withProgressLogger(dataSource, events, () =>
        executor.executePendingMigrations(),
      );
      return applied.map((m) => m.name);
    },
    events.waiting,
  );
}

/** Undoes the last applied migration; returns its name, or undefined when none is applied. */
export async function revertLastMigration(
  dataSource: DataSource,
  url: string,
  events: MigratorEvents = {},
): Promise<string | undefined> {
  return withMigrationLock(
    url,
    async () => {
      const applied = (await migrationStates(dataSource)).filter((m) => m.applied);
      const last = applied[applied.length - 1];
      if (!last) return undefined;
      const executor = new MigrationExecutor(dataSource);
      const instance = dataSource.migrations.find((m) => m.name === last.name);
      // TypeORM's revert wraps down() in a transaction whatever the migration says; a migration
      // that opts out (CREATE INDEX CONCURRENTLY) must be reverted without one.
      executor.transaction = instance?.transaction === false ? 'none' : 'each';
      await withProgressLogger(dataSource, events, () => executor.undoLastMigration());
      return last.name;
    },
    events.waiting,
  );
}
