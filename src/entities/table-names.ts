import { getMetadataArgsStorage } from 'typeorm';
import { entities } from './index';

/**
 * The tables of `entities`, in its order: parents before children, as the data flows. Read
 * from the entities' own metadata, so a renamed table is renamed here too.
 */
export function entityTableNames(): string[] {
  const tables = getMetadataArgsStorage().tables;
  return entities.map(
    (entity) => tables.find((table) => table.target === entity)?.name ?? entity.name,
  );
}
