import type { DataSourceOptions } from 'typeorm';
import { dataSourceOptions, entities, migrations } from '@pixcrawler/data';
import { Note } from './note.entity';
import { AddNotes1796313246129 } from './migrations/1796313246129-AddNotes';

/**
 * The app's DataSource options on a database: @pixcrawler/data's entities and migrations beside
 * the app's own, in one migrations table ("one stream", docs/library.md).
 */
export function appDataSourceOptions(url: string | undefined): DataSourceOptions {
  return {
    ...dataSourceOptions({ url }),
    entities: [...entities, Note],
    migrations: [...migrations, AddNotes1796313246129],
  };
}
