import { migrations } from '../../src/migrations';
import { spawnCli } from '../helpers/cli';
import { invalidIndexes, notValidConstraints, recordedMigrations } from '../helpers/schema-state';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';

describe('one migrator at a time', () => {
  let db: TestDatabase;

  beforeAll(async () => {
    db = await createTestDatabase('concurrent');
  });
  afterAll(() => db.drop());

  it('four migrate processes started at once: each migration applied once, all exit 0', async () => {
    const runs = Array.from({ length: 4 }, () => spawnCli(['migrate'], db.url));
    const exits = await Promise.all(runs.map((run) => run.exited));

    expect(exits).toEqual(Array(4).fill({ code: 0, signal: null }));
    expect(await recordedMigrations(db)).toEqual(migrations.map((m) => new m().name));
    const outputs = runs.map((run) => run.output());
    // One process applied everything; the others found nothing left once they had the lock.
    expect(
      outputs.filter((o) => o.includes(`Applied ${migrations.length} migration(s).`)),
    ).toHaveLength(1);
    expect(outputs.filter((o) => o.includes('Nothing to migrate'))).toHaveLength(3);
    expect(await invalidIndexes(db)).toEqual([]);
    expect(await notValidConstraints(db)).toEqual([]);
  });
});
