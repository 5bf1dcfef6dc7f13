import type { DataSource } from 'typeorm';

/**
 * The SQL TypeORM would generate to bring the database to the entities: what
 * `typeorm migration:generate --check` reports. Empty means no drift.
 */
export async function schemaDrift(dataSource: DataSource): Promise<string[]> {
  const sql = await dataSource.driver.createSchemaBuilder().log();
  return sql.upQueries.map((query) => query.query);
}
