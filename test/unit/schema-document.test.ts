import { readFileSync } from 'node:fs';
import path from 'node:path';
import { buildSchemaDocument } from '../../scripts/schema-doc';
import { PIXCRAWLER_TABLES } from '../helpers/sql-rows';

describe('docs/schema.md', () => {
  it('is what the entity metadata says now (else: npm run docs:schema)', async () => {
    const written = readFileSync(path.join(__dirname, '..', '..', 'docs', 'schema.md'), 'utf8');
    const current = await buildSchemaDocument();
    // Compared line by line, so that a stale file names the first line that differs.
    expect(written.split('\n')).toEqual(current.split('\n'));
  });

  it('has a section and an ER entity for every table, and an ER line for every foreign key', async () => {
    const text = await buildSchemaDocument();
    for (const table of PIXCRAWLER_TABLES) {
      expect(text).toContain(`\n## ${table}\n`);
      expect(text).toContain(`\n  ${table} {\n`);
    }
    expect(text.match(/--o\{/g)).toHaveLength(7);
  });
});
