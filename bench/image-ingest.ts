import { Client } from 'pg';
import { copyRows } from '../src/testing/legacy-builder';
import { Image } from '../src/entities/image.entity';
import type { BenchContext } from './lib/context';
import { progressBar } from './lib/context';
import {
  crawlJobsOfOneUser,
  IMAGE_COPY_COLUMNS,
  imageCopyRows,
  ingestImages,
  newImages,
} from './lib/fixtures';
import { fmt, fmtInt, ratio, type BenchTable } from './lib/report';
import { BenchmarkBroken, runStandalone, type Benchmark } from './lib/runner';
import { now, perSecond } from './lib/timing';

const INGEST_BATCH = 10_000;
const SAVE_CHUNK = 1_000;

async function run(ctx: BenchContext): Promise<BenchTable[]> {
  const url = await ctx.migratedEmpty('ingest');
  const dataSource = await ctx.connect(url, 2);
  const { ingestRows, saveRows } = ctx.sizes;
  const oneByOneRows = Math.max(100, Math.floor(saveRows / 10));
  const {
    crawlJobIds: [viaIngest, viaCopy, viaSave, viaSaveEach],
  } = await crawlJobsOfOneUser(dataSource, 4);

  // 1. The repository's path: one unnest INSERT per batch, counters updated in the same statement.
  const ingestMs = await ingestImages(dataSource, viaIngest, ingestRows, {
    batch: INGEST_BATCH,
    label: 'ImageRepository.ingest',
  });

  // 2. The ceiling: the same rows streamed with COPY FROM STDIN (the legacy builder's loader).
  const client = new Client({ connectionString: url });
  await client.connect();
  const bar = progressBar('COPY FROM STDIN');
  bar.start(ingestRows, 0, { unit: 'rows' });
  let copyMs: number;
  try {
    const t = now();
    await copyRows(
      client,
      'images',
      IMAGE_COPY_COLUMNS,
      imageCopyRows(viaCopy, 0, ingestRows),
      (done) => bar.update(done),
    );
    copyMs = now() - t;
  } finally {
    bar.stop();
    await client.end();
  }

  // 3. What a naive user writes: TypeORM save() of entities.
  const repository = dataSource.getRepository(Image);
  const entities = (crawlJobId: number, count: number) =>
    newImages(0, count).map((image) => repository.create({ ...image, crawlJobId }));
  const many = entities(viaSave, saveRows);
  let t = now();
  await repository.save(many, { chunk: SAVE_CHUNK });
  const saveMs = now() - t;
  const each = entities(viaSaveEach, oneByOneRows);
  t = now();
  for (const entity of each) await repository.save(entity);
  const saveEachMs = now() - t;

  const counts: Array<{ crawl_job_id: number; n: number }> = await dataSource.query(
    `SELECT crawl_job_id, count(*)::int AS n FROM images GROUP BY crawl_job_id`,
  );
  const expected = new Map([
    [viaIngest, ingestRows],
    [viaCopy, ingestRows],
    [viaSave, saveRows],
    [viaSaveEach, oneByOneRows],
  ]);
  for (const [id, n] of expected) {
    const found = counts.find((c) => c.crawl_job_id === id)?.n ?? 0;
    if (found !== n) throw new BenchmarkBroken(`crawl job ${id}: ${found} images, expected ${n}`);
  }

  const ingestRate = perSecond(ingestRows, ingestMs);
  const copyRate = perSecond(ingestRows, copyMs);
  const saveRate = perSecond(saveRows, saveMs);
  const saveEachRate = perSecond(oneByOneRows, saveEachMs);
  const row = (what: string, rows: number, ms: number, rate: number) => [
    what,
    fmtInt(rows),
    fmt(ms / 1000, 2),
    fmtInt(rate),
    ratio(rate, copyRate),
    ratio(ingestRate, rate),
  ];
  return [
    {
      title: 'Image ingest: rows per second into the images table',
      headers: ['path', 'rows', 'seconds', 'rows/s', 'vs COPY (ceiling)', 'ingest() is … faster'],
      rows: [
        row(
          `ImageRepository.ingest (${fmtInt(INGEST_BATCH)} rows per statement)`,
          ingestRows,
          ingestMs,
          ingestRate,
        ),
        row('COPY FROM STDIN (ceiling)', ingestRows, copyMs, copyRate),
        row(`TypeORM repository.save(rows, { chunk: ${SAVE_CHUNK} })`, saveRows, saveMs, saveRate),
        row('TypeORM repository.save(row), one at a time', oneByOneRows, saveEachMs, saveEachRate),
      ],
      notes: [
        'Each path writes the same generated rows into its own crawl job of an empty, migrated database. ' +
          'ingest() also adds the count to the crawl job in the same statement; COPY and save() do not.',
      ],
    },
  ];
}

export const benchmark: Benchmark = {
  name: 'image-ingest',
  title: '3. Image ingest: repository vs COPY vs TypeORM save()',
  run,
};

if (require.main === module) runStandalone(benchmark);
