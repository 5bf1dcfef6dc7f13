import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';
import { withDatabase } from '../../src/connection/database-url';
import { useReplicaFallback } from '../../src/connection/replica-fallback';
import { startStreamingReplica, type StreamingReplica } from '../helpers/streaming-replica';
import { createTestDatabase, type TestDatabase } from '../../src/testing/test-database';

/**
 * A replica that is down, at start-up or later, does not stop the application: with
 * useReplicaFallback, initialize() succeeds on the primary alone, reads meant for the replica go
 * to the primary while it is down (an event says so), and to the replica again once it is back.
 * Against a real primary and streaming replica, the replica stopped and started.
 */
describe('reads when the replica is down', () => {
  let replica: StreamingReplica;
  let db: TestDatabase;
  const sources: DataSource[] = [];

  beforeAll(async () => {
    replica = await startStreamingReplica();
    db = await createTestDatabase({ serverUrl: replica.primaryUrl(), label: 'replica_down' });
    await db.migrate();
    await replica.caughtUp();
  }, 120_000);
  afterAll(async () => {
    await Promise.all(sources.map((ds) => ds.isInitialized && ds.destroy()));
    await db?.drop();
    await replica?.stop();
  });

  const options = () =>
    dataSourceOptions({
      replication: {
        master: { url: db.url },
        slaves: [{ url: withDatabase(replica.replicaUrl(), db.name) }],
      },
    });

  /** A DataSource with the fallback, and what it said. */
  function fallingBack() {
    const said: string[] = [];
    const ds = useReplicaFallback(new DataSource(options()), {
      retryAfterMs: 200,
      onReplicaDown: (name, error) => said.push(`down ${name}: ${error.message}`),
      onReplicaBack: (name) => said.push(`back ${name}`),
    });
    sources.push(ds);
    return { ds, said };
  }

  /** Which server a read meant for a replica ran on. */
  async function readServer(ds: DataSource): Promise<'replica' | 'primary'> {
    const runner = ds.createQueryRunner('slave');
    try {
      const [row] = await runner.query('SELECT pg_is_in_recovery() AS standby');
      return row.standby ? 'replica' : 'primary';
    } finally {
      await runner.release();
    }
  }

  /**
   * Reads (250 ms apart) until one runs on `server`. One read may fail: a pooled connection to a
   * replica that just stopped, taken before the pool saw it close.
   */
  async function readsReach(ds: DataSource, server: 'replica' | 'primary'): Promise<void> {
    let failures = 0;
    for (let i = 0; i < 50; i++) {
      try {
        if ((await readServer(ds)) === server) return;
      } catch (error) {
        if (++failures > 1) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    throw new Error(`reads never reached the ${server}`);
  }

  it('down at start-up: initialize() succeeds, reads go to the primary, then to the replica once it is back', async () => {
    await replica.stopReplica();
    const { ds, said } = fallingBack();
    try {
      // The fault: without the fallback, TypeORM's initialize() fails on the replica's pool.
      const plain = new DataSource(options());
      await expect(plain.initialize()).rejects.toThrow(/ECONNREFUSED/);

      await ds.initialize();
      expect(said).toEqual([
        expect.stringMatching(
          /^down postgresql:\/\/postgres@127\.0\.0\.1:\d+\/\S+: .*ECONNREFUSED/,
        ),
      ]);
      expect(await readServer(ds)).toBe('primary');
      expect(await ds.query('SELECT count(*)::int AS n FROM profiles')).toEqual([{ n: 0 }]);
    } finally {
      await replica.startReplica();
    }
    await replica.caughtUp();
    await readsReach(ds, 'replica');
    expect(said).toEqual([expect.stringMatching(/^down /), expect.stringMatching(/^back /)]);
  });

  it('down later: reads move to the primary with one event, and back to the replica with another', async () => {
    const { ds, said } = fallingBack();
    await ds.initialize();
    expect(await readServer(ds)).toBe('replica');
    expect(said).toEqual([]);

    await replica.stopReplica();
    // The pool drops its connections to the stopped server as they close; then every read
    // reaches the primary.
    await readsReach(ds, 'primary');
    for (let i = 0; i < 5; i++) expect(await readServer(ds)).toBe('primary');
    expect(said).toEqual([expect.stringMatching(/^down /)]);

    await replica.startReplica();
    await replica.caughtUp();
    await readsReach(ds, 'replica');
    expect(said).toEqual([expect.stringMatching(/^down /), expect.stringMatching(/^back /)]);
  });
});
