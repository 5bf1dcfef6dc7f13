import { Client, type Notification } from 'pg';
import { DataSource, type MigrationInterface, type QueryRunner } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { formatPlan } from '../../src/cli/reports/plan';
import { migrations } from '../../src/migrations';
import { planMigrations, type PlanStep } from '../../src/migrator/plan';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

/**
 * `plan` runs a migration's up() and answers its reads from the database: only the catalog
 * reads that can change nothing. A read that would move a sequence, take an advisory lock,
 * notify, or write through a CTE is listed as a step not run, and nothing happens.
 */

/** What each read of the probe's up() got back (a read not run gets no rows). */
const answers = new Map<string, unknown>();

/** The reads a careless future migration could send, each hidden a different way. */
const SIDE_EFFECTS: Array<[string, unknown[]?]> = [
  [`SELECT setval('plan_probe_seq', 100)`],
  [`SELECT nextval('plan_probe_seq')`],
  [`WITH next AS (SELECT nextval('plan_probe_seq') AS id) SELECT id FROM next`],
  [`SELECT pg_advisory_lock(4242)`],
  [`SELECT pg_advisory_xact_lock(4243)`],
  [`SELECT pg_try_advisory_lock(4244)`],
  [`SELECT pg_try_advisory_xact_lock(4245)`],
  [`SELECT pg_advisory_lock_shared(4246)`],
  [`SELECT locked FROM (SELECT pg_advisory_lock($1) AS locked) AS hidden`, [4247]],
  [`SELECT 1; SELECT pg_advisory_lock(4248)`],
  [`SELECT pg_notify('plan_probe', 'sent by plan')`],
  [`WITH gone AS (DELETE FROM plan_probe RETURNING id) SELECT count(*) FROM gone`],
  [`SELECT id FROM plan_probe FOR UPDATE`],
];
const CATALOG_READ = `SELECT relname FROM pg_class WHERE relname = $1`;

class SideEffects1900000000000 implements MigrationInterface {
  name = 'SideEffects1900000000000';

  public async up(queryRunner: QueryRunner): Promise<void> {
    for (const [sql, parameters] of SIDE_EFFECTS) {
      answers.set(sql, await queryRunner.query(sql, parameters));
    }
    answers.set(CATALOG_READ, await queryRunner.query(CATALOG_READ, ['plan_probe']));
  }

  public async down(): Promise<void> {}
}

describe('plan runs none of the side effects a read of up() could have', () => {
  let db: TestDatabase;
  let dataSource: DataSource;
  let observer: Client;
  const notifications: Notification[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('plan_side_effects');
    await db.migrate();
    await db.query('CREATE SEQUENCE plan_probe_seq');
    await db.query('CREATE TABLE plan_probe (id int PRIMARY KEY)');
    await db.query('INSERT INTO plan_probe VALUES (1)');
    dataSource = new DataSource(
      dataSourceOptions({ url: db.url, migrations: [...migrations, SideEffects1900000000000] }),
    );
    await dataSource.initialize();
    observer = new Client({ connectionString: db.url });
    await observer.connect();
    observer.on('notification', (notification) => notifications.push(notification));
    await observer.query('LISTEN plan_probe');
  });
  afterAll(async () => {
    await observer.end();
    await dataSource.destroy();
    await db.drop();
  });

  it('moves no sequence, holds no advisory lock, sends no notification, deletes no row, and lists each read as not run', async () => {
    const plan = await planMigrations(dataSource);

    expect(plan.migrations.map((m) => m.name)).toEqual(['SideEffects1900000000000']);
    const steps = new Map<string, PlanStep>(
      plan.migrations[0].steps.map((step) => [step.statement, step]),
    );
    for (const [sql] of SIDE_EFFECTS) {
      expect({ sql, notRun: steps.get(sql)?.notRun }).toEqual({
        sql,
        notRun: expect.objectContaining({ reason: expect.any(String) }),
      });
      expect(answers.get(sql)).toEqual([]);
    }
    expect(steps.get(`SELECT setval('plan_probe_seq', 100)`)?.notRun).toEqual({
      reason: 'changes',
      detail: 'setval(regclass,bigint)',
    });
    expect(steps.get(`SELECT pg_advisory_lock(4242)`)?.notRun).toEqual({
      reason: 'changes',
      detail: 'pg_advisory_lock(bigint)',
    });
    expect(steps.get(`SELECT pg_notify('plan_probe', 'sent by plan')`)?.notRun).toEqual({
      reason: 'changes',
      detail: 'pg_notify(text,text)',
    });
    // PostgreSQL will not parse a writable CTE as a view: plan cannot vouch for it.
    expect(
      steps.get(`WITH gone AS (DELETE FROM plan_probe RETURNING id) SELECT count(*) FROM gone`)
        ?.notRun?.reason,
    ).toBe('unchecked');
    // The catalog read ran, and answered.
    expect(steps.has(CATALOG_READ)).toBe(false);
    expect(answers.get(CATALOG_READ)).toEqual([{ relname: 'plan_probe' }]);

    const [sequence] = await db.query<{ last_value: string; is_called: boolean }>(
      'SELECT last_value::text, is_called FROM plan_probe_seq',
    );
    expect(sequence).toEqual({ last_value: '1', is_called: false });
    expect(
      await db.query(`SELECT pid, objid, mode FROM pg_locks WHERE locktype = 'advisory'`),
    ).toEqual([]);
    expect(await db.query('SELECT id FROM plan_probe')).toEqual([{ id: 1 }]);
    // A notification sent now arrives: had plan's been sent, it would have arrived before it.
    await db.query(`SELECT pg_notify('plan_probe', 'sent after plan')`);
    await observer.query('SELECT 1');
    while (notifications.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(notifications.map((n) => n.payload)).toEqual(['sent after plan']);

    const report = formatPlan(plan, 'pixcrawler-db plan');
    expect(report).toContain(
      `${SIDE_EFFECTS.length} read(s) of up() were not run (NOT RUN below), so the plan may differ from what migrate does.`,
    );
    expect(report).toContain(
      'NOT RUN: it can change something (setval(regclass,bigint));\n' +
        '       up() got no rows from it, so what follows may differ from what migrate does',
    );
  });
});

it("plan still runs every catalog read of the migrations' own up() on a new database", async () => {
  const db = await createTestDatabase('plan_catalog_reads');
  try {
    const plan = await planMigrations(await db.connect());
    const steps = plan.migrations.flatMap((m) => m.steps);
    expect(steps.length).toBeGreaterThan(40);
    expect(steps.filter((step) => step.notRun)).toEqual([]);
  } finally {
    await db.drop();
  }
});
