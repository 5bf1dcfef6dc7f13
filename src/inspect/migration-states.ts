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
