import { MigrationExecutor, type DataSource } from 'typeorm';
import { migrationName } from '../migrations/migration-traits';

export interface MigrationState {
  name: string;
  applied: boolean;
  /** Recorded as applied in the database but unknown to this code (a newer release ran it?). */
  unknown?: boolean;
}

/** Every migration this code knows, oldest first, plus any applied one it does not know. */
export async function migrationStates(dataSource: DataSource): Promise<MigrationState[]> {
  const executed = await new MigrationExecutor(dataSource).getExecutedMigrations();
  const executedNames = new Set(executed.map((m) => m.name));
  const known = dataSource.migrations.map(migrationName);
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

/** Where a database stands in the migration chain: what `status` reports. */
export interface MigrationStatus {
  /** Every known migration oldest first, then any applied one this code does not know. */
  migrations: MigrationState[];
  /** The last applied migration, if any. */
  current: string | null;
  /** The newest migration this code knows. */
  head: string | null;
  pending: string[];
  /** Applied here but unknown to this code (a newer release ran them). */
  unknown: string[];
  upToDate: boolean;
}

export async function migrationStatus(dataSource: DataSource): Promise<MigrationStatus> {
  const migrations = await migrationStates(dataSource);
  const pending = migrations.filter((m) => !m.applied).map((m) => m.name);
  return {
    migrations,
    current: migrations.filter((m) => m.applied).at(-1)?.name ?? null,
    head: migrations.filter((m) => !m.unknown).at(-1)?.name ?? null,
    pending,
    unknown: migrations.filter((m) => m.unknown).map((m) => m.name),
    upToDate: pending.length === 0,
  };
}
