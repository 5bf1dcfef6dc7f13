import { Client } from 'pg';
import { planMigrations } from '../../src/migrator/plan';
import { buildAlembicDatabase } from '../../src/testing/alembic-database-builder';
import { buildOrmDatabase } from '../../src/testing/orm-database-builder';
import { recordedMigrations } from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * The locks `plan` claims are the locks PostgreSQL takes: the plan of an ORM-made database is
 * run, statement by statement, each transactional one in a transaction of its own that reads
 * pg_locks before it commits. (Statements that must run outside a transaction, CONCURRENTLY,
 * run as they are.)
 */

const MODE: Record<string, string> = {
  AccessExclusiveLock: 'ACCESS EXCLUSIVE',
  ExclusiveLock: 'EXCLUSIVE',
  ShareRowExclusiveLock: 'SHARE ROW EXCLUSIVE',
  ShareLock: 'SHARE',
  ShareUpdateExclusiveLock: 'SHARE UPDATE EXCLUSIVE',
  RowExclusiveLock: 'ROW EXCLUSIVE',
  RowShareLock: 'ROW SHARE',
};
const ORDER = Object.values(MODE);

const DATABASES: Array<[string, (url: string) => Promise<unknown>]> = [
  ['an ORM-made database', (url) => buildOrmDatabase(url, { images: 500 })],
  // Renames, comments, a widening and an index swap instead of additions.
  [
    "a database PixCrawler's Alembic 001 built",
    (url) => buildAlembicDatabase(url, { images: 500 }),
  ],
];

it.each(DATABASES)(
  'every transactional statement of the plan of %s takes exactly the locks the plan names',
  async (_, build) => {
    const db: TestDatabase = await createTestDatabase('plan_locks');
    try {
      await build(db.url);
      const dataSource = await db.connect();
      const plan = await planMigrations(dataSource, { baseline: true });
      expect(plan.refusal).toBeUndefined();
      const client = new Client({ connectionString: db.url });
      await client.connect();
      try {
        let checked = 0;
        for (const migration of plan.migrations) {
          for (const step of migration.steps) {
            if (/CONCURRENTLY/i.test(step.statement)) {
              await client.query(step.statement);
              continue;
            }
            await client.query('BEGIN');
            await client.query(`SET LOCAL TimeZone = 'UTC'`);
            await client.query(step.statement);
            const { rows } = await client.query<{ table: string; mode: string }>(
              `SELECT c.relname AS table, l.mode
             FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
            WHERE l.pid = pg_backend_pid() AND c.relkind IN ('r', 'p')
              AND c.relnamespace = 'public'::regnamespace AND l.mode <> 'AccessShareLock'`,
            );
            await client.query('COMMIT');
            const strongest = new Map<string, string>();
            for (const row of rows) {
              const mode = MODE[row.mode];
              const held = strongest.get(row.table);
              if (!held || ORDER.indexOf(mode) < ORDER.indexOf(held))
                strongest.set(row.table, mode);
            }
            if (step.creates) strongest.delete(step.creates);
            const taken = [...strongest].map(([table, mode]) => `${table} ${mode}`).sort();
            const claimed = step.locks.map((lock) => `${lock.table} ${lock.mode}`).sort();
            expect({ statement: step.statement, locks: taken }).toEqual({
              statement: step.statement,
              locks: claimed,
            });
            checked++;
          }
        }
        expect(checked).toBeGreaterThan(40);
      } finally {
        await client.end();
      }
      // The statements ran as planned (by hand, so nothing is recorded).
      expect(await recordedMigrations(db)).toEqual([]);
    } finally {
      await db.drop();
    }
  },
);
