import { MigrationExecutor, type DataSource } from 'typeorm';
import {
  migrationName,
  type MigrationObject,
  type PixCrawlerMigration,
} from '../migrations/migration-traits';

export interface MigrationState {
  name: string;
  applied: boolean;
  /** Recorded as applied but unknown to this code (the app's own migration? a newer release?). */
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
  /** Applied here but unknown to this code (the app's own migrations, or a newer release's). */
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

/** A migration recorded as applied whose objects are not all there. */
export interface IncompleteMigration {
  name: string;
  missing: MigrationObject[];
  /** Its up() can run again to make what is missing (see MigrationTraits.rerunnable). */
  rerunnable: boolean;
}

/**
 * Recorded migrations whose declared objects (MigrationTraits.creates) are missing from the
 * current schema: what an interrupted revert leaves (the record is removed last). Oldest first.
 */
export async function incompleteMigrations(dataSource: DataSource): Promise<IncompleteMigration[]> {
  const applied = new Set(
    (await migrationStates(dataSource)).filter((s) => s.applied).map((s) => s.name),
  );
  const declared = (dataSource.migrations as PixCrawlerMigration[]).filter(
    (m) => applied.has(migrationName(m)) && (m.creates?.length ?? 0) > 0,
  );
  if (declared.length === 0) return [];
  const rows: { kind: string; table: string; name: string }[] = await dataSource.query(
    `SELECT 'table' AS kind, c.relname AS table, c.relname AS name
       FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
     UNION ALL
     SELECT 'index', t.relname, i.relname
       FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      WHERE t.relnamespace = current_schema()::regnamespace AND x.indisvalid
     UNION ALL
     SELECT 'constraint', t.relname, con.conname
       FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid
      WHERE t.relnamespace = current_schema()::regnamespace`,
  );
  const present = new Set(rows.map((r) => `${r.kind} ${r.table}.${r.name}`));
  return declared.flatMap((migration) => {
    const missing = (migration.creates ?? []).filter(
      (object) => !present.has(`${object.kind} ${object.table}.${object.name}`),
    );
    return missing.length === 0
      ? []
      : [{ name: migrationName(migration), missing, rerunnable: migration.rerunnable === true }];
  });
}
