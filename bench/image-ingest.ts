import { Client } from 'pg';
import { copyRows } from '../src/testing/legacy-builder';
import { Image } from '../src/entities/image.entity';
import type { BenchContext } from './lib/context';
import { progressBar } from './lib/context';
import { CrawlJobRepository } from '../src/repositories/crawl-job.repository';
import { ImageRepository } from '../src/repositories/image.repository';
import { CrawlJobService } from '../src/services/crawl-job.service';
import { crawlJobsOfOneUser, IMAGE_COPY_COLUMNS, imageCopyRows, newImages } from './lib/fixtures';
import { fmt, fmtInt, ratio, type BenchTable } from './lib/report';
import { BenchmarkBroken, runStandalone, type Benchmark } from './lib/runner';
import { now, perSecond } from './lib/timing';

const INGEST_BATCH = 10_000;
/**
 * save() of a whole batch in one call needs `chunk`: one INSERT of 10,000 images would carry
 * 80,000 bind parameters, over PostgreSQL's 65,535 ("bind message has 14464 parameter formats
 * but 0 parameters"). Two INSERTs of 5,000 rows each, the fewest that fit.
 */
const SAVE_CHUNK = 5_000;

async function run(ctx: BenchContext): Promise<BenchTable[]> {
  const url = await ctx.migratedEmpty('ingest');
  const dataSource = await ctx.connect(url, 2);
  const { ingestRows, saveRows } = ctx.sizes;
  const oneByOneRows = Math.max(100, Math.floor(saveRows / 10));
  const {
    crawlJobIds: [viaIngest, viaRepository, viaCopy, viaCopyBatches, viaSave, viaSaveEach],
  } = await crawlJobsOfOneUser(dataSource, 6);

  // 1. The public path: CrawlJobService.ingestImages, 10,000 rows per call, into a running job
  //    (COPY FROM STDIN, the job's counters updated in the same transaction).
  await dataSource.query(`UPDATE crawl_jobs SET max_images = 2147483647 WHERE id = $1`, [
    viaIngest,
  ]);
  await new CrawlJobRepository(dataSource).transition(viaIngest, 'start');
  const service = new CrawlJobService(dataSource);
  const client = new Client({ connectionString: url });
  await client.connect();
  // 2. The baseline: the same rows with COPY FROM STDIN (the legacy builder's loader) in
  //    statements of 10,000 rows, alternating with the ingest calls so that both write into
  //    the same table at the same size (index growth, cache); then the ceiling: one stream of
  //    all rows.
  const repository = new ImageRepository(dataSource);
  let ingestMs = 0;
  let repositoryMs = 0;
  let copyBatchMs = 0;
  let copyMs: number;
  const bar = progressBar('ingestImages and COPY');
  bar.start(4 * ingestRows, 0, { unit: 'rows' });
  try {
    for (let done = 0; done < ingestRows; done += INGEST_BATCH) {
      const count = Math.min(INGEST_BATCH, ingestRows - done);
      // Rows made untimed for all three paths first; then the paths take turns going first,
      // so none always pays for the collection of the batch just allocated (or enjoys a
      // freshly collected heap).
      const rows = newImages(done, count);
      const copyBatch = [...imageCopyRows(viaCopyBatches, done, count)].values();
      const paths = [
        async () => {
          const t = now();
          await service.ingestImages(viaIngest, rows);
          ingestMs += now() - t;
        },
        async () => {
          const t = now();
          await repository.ingest(viaRepository, rows);
          repositoryMs += now() - t;
        },
        async () => {
          const t = now();
          await copyRows(client, 'images', IMAGE_COPY_COLUMNS, copyBatch);
          copyBatchMs += now() - t;
        },
      ];
      const first = (done / INGEST_BATCH) % paths.length;
      for (let i = 0; i < paths.length; i++) await paths[(first + i) % paths.length]();
      bar.update(3 * (done + count));
    }
    const t = now();
    await copyRows(
      client,
      'images',
      IMAGE_COPY_COLUMNS,
      imageCopyRows(viaCopy, 0, ingestRows),
      (done) => bar.update(3 * ingestRows + done),
    );
    copyMs = now() - t;
  } finally {
    bar.stop();
    await client.end();
  }

  // 3. What a naive user writes: TypeORM save() of entities.
  const images = dataSource.getRepository(Image);
  const entities = (crawlJobId: number, count: number) =>
    newImages(0, count).map((image) => images.create({ ...image, crawlJobId }));
  const many = entities(viaSave, saveRows);
  let t = now();
  await images.save(many, { chunk: SAVE_CHUNK });
  const saveMs = now() - t;
  const each = entities(viaSaveEach, oneByOneRows);
  t = now();
  for (const entity of each) await images.save(entity);
  const saveEachMs = now() - t;

  const counts: Array<{ crawl_job_id: number; n: number }> = await dataSource.query(
    `SELECT crawl_job_id, count(*)::int AS n FROM images GROUP BY crawl_job_id`,
  );
  const expected = new Map([
    [viaIngest, ingestRows],
    [viaRepository, ingestRows],
    [viaCopy, ingestRows],
    [viaCopyBatches, ingestRows],
    [viaSave, saveRows],
    [viaSaveEach, oneByOneRows],
  ]);
  for (const [id, n] of expected) {
    const found = counts.find((c) => c.crawl_job_id === id)?.n ?? 0;
    if (found !== n) throw new BenchmarkBroken(`crawl job ${id}: ${found} images, expected ${n}`);
  }

  const [counters] = (await dataSource.query(
    `SELECT total_images, downloaded_images FROM crawl_jobs WHERE id = $1`,
    [viaIngest],
  )) as Array<{ total_images: number; downloaded_images: number }>;
  if (counters.total_images !== ingestRows || counters.downloaded_images !== ingestRows) {
    throw new BenchmarkBroken(
      `ingest counters ${JSON.stringify(counters)}, expected ${ingestRows}`,
    );
  }
  // Content: the ingested rows equal COPY's, value for value.
  const [differences] = (await dataSource.query(
    `SELECT count(*)::int AS n FROM (
       (SELECT original_url, filename, storage_url, width, height, file_size, format FROM images WHERE crawl_job_id = $1
        EXCEPT ALL
        SELECT original_url, filename, storage_url, width, height, file_size, format FROM images WHERE crawl_job_id = $2)
       UNION ALL
       (SELECT original_url, filename, storage_url, width, height, file_size, format FROM images WHERE crawl_job_id = $2
        EXCEPT ALL
        SELECT original_url, filename, storage_url, width, height, file_size, format FROM images WHERE crawl_job_id = $1)) d`,
    [viaIngest, viaCopy],
  )) as Array<{ n: number }>;
  if (differences.n !== 0)
    throw new BenchmarkBroken(`${differences.n} ingested rows differ from COPY's`);

  const ingestRate = perSecond(ingestRows, ingestMs);
  const repositoryRate = perSecond(ingestRows, repositoryMs);
  const copyBatchRate = perSecond(ingestRows, copyBatchMs);
  const copyRate = perSecond(ingestRows, copyMs);
  const saveRate = perSecond(saveRows, saveMs);
  const saveEachRate = perSecond(oneByOneRows, saveEachMs);
  const row = (what: string, rows: number, ms: number, rate: number) => [
    what,
    fmtInt(rows),
    fmt(ms / 1000, 2),
    fmtInt(rate),
    ratio(rate, copyBatchRate),
    ratio(rate, copyRate),
    ratio(ingestRate, rate),
  ];
  return [
    {
      title: 'Image ingest: rows per second into the images table',
      headers: [
        'path',
        'rows',
        'seconds',
        'rows/s',
        `vs COPY, ${fmtInt(INGEST_BATCH)} per statement`,
        'vs COPY, one stream',
        'ingestImages is … faster',
      ],
      rows: [
        row(
          `CrawlJobService.ingestImages (${fmtInt(INGEST_BATCH)} rows per call)`,
          ingestRows,
          ingestMs,
          ingestRate,
        ),
        row(
          `ImageRepository.ingest (${fmtInt(INGEST_BATCH)} rows per call, no row checks)`,
          ingestRows,
          repositoryMs,
          repositoryRate,
        ),
        row(
          `COPY FROM STDIN, ${fmtInt(INGEST_BATCH)} rows per statement (baseline)`,
          ingestRows,
          copyBatchMs,
          copyBatchRate,
        ),
        row('COPY FROM STDIN, one stream of all rows (ceiling)', ingestRows, copyMs, copyRate),
        row(
          `TypeORM repository.save(entities, { chunk: ${fmtInt(SAVE_CHUNK)} }), one call per batch of ${fmtInt(saveRows)} rows`,
          saveRows,
          saveMs,
          saveRate,
        ),
        row('TypeORM repository.save(row), one at a time', oneByOneRows, saveEachMs, saveEachRate),
      ],
      notes: [
        'Each path writes the same generated rows into its own crawl job of an empty, migrated database. ' +
          'ingestImages locks the running crawl job, COPYs the rows, checking each one (issue 9: URLs, names, ' +
          'lengths, ranges) as it encodes it, and adds the count to the job’s counters in the same transaction; ' +
          'ImageRepository.ingest is that data path without the row checks ' +
          '(checked after the run, as are the row counts and that its rows equal COPY’s); COPY and save() do not.',
        'save() comes twice. One entity per call is how an application saves what arrives one image at a ' +
          'time, and what "20x TypeORM’s save()" is held to here. An array per call in chunks of ' +
          `${fmtInt(SAVE_CHUNK)} (multi-row INSERTs) is TypeORM’s fastest form: against it, 20x would take ` +
          'twice COPY’s own speed, which is about 10x of it on this machine (the “vs COPY” column).',
      ],
    },
  ];
}

export const benchmark: Benchmark = {
  name: 'image-ingest',
  title: '3. Image ingest: ingestImages vs COPY vs TypeORM save()',
  run,
};

if (require.main === module) runStandalone(benchmark);
