import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { openDatabaseTarget } from './src/local/database-target';
import { dataSourceOptions } from './src/connection/data-source-options';

/**
 * The DataSource the TypeORM CLI loads (`typeorm-ts-node-commonjs migration:run -d ormconfig.ts`).
 * It uses DATABASE_URL, or starts the embedded PostgreSQL when that is unset; the CLI awaits
 * this exported promise.
 */
export const dataSource: Promise<DataSource> = openDatabaseTarget().then((target) => {
  console.error(`Database: ${target.label}`);
  return new DataSource(dataSourceOptions({ url: target.url }));
});
