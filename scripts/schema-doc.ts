import 'reflect-metadata';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../src/connection/data-source-options';
import { expectedSchema } from '../src/inspect/expected-schema';
import { schemaDocument } from '../src/inspect/schema-document';

/**
 * `npm run docs:schema`: writes docs/schema.md from the entity metadata (nothing connects). The
 * file is as generated (prettier leaves it alone: .prettierignore), so a test can compare it.
 */
export async function buildSchemaDocument(): Promise<string> {
  const dataSource = new DataSource(
    dataSourceOptions({ url: 'postgresql://unused@127.0.0.1:1/unused' }),
  );
  // What initialize() runs after connecting; protected in TypeORM 1.x, hence the cast.
  await (dataSource as unknown as { buildMetadatas(): Promise<void> }).buildMetadatas();
  return schemaDocument(expectedSchema(dataSource));
}

if (require.main === module) {
  buildSchemaDocument().then(
    (text) => writeFileSync(path.join(__dirname, '..', 'docs', 'schema.md'), text),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
