import { BlobServiceClient } from '@azure/storage-blob';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../src/connection/data-source-options';
import { BlobContainerDestination } from '../src/services/export/blob-container-destination';
import { LocalDirectoryDestination } from '../src/services/export/local-directory-destination';
import { ExportJobService, MANIFEST_COLUMNS } from '../src/services/export-job.service';
import { startAzurite } from '../test/helpers/azurite';
import type { BenchContext } from './lib/context';
import { crawlJobsOfOneUser, ingestImages } from './lib/fixtures';
import { sampleMemory, type MemoryPeaks } from './lib/memory';
import { fmt, fmtBytes, fmtInt, ratio, type BenchTable } from './lib/report';
import { childOrStandalone, runInChild } from './lib/child';
import { BenchmarkBroken, type Benchmark } from './lib/runner';
import { now, perSecond } from './lib/timing';

type Mode = 'csv' | 'csv-plain' | 'jsonl' | 'copy' | 'csv-blob' | 'copy-blob';
/** Local file modes, run at both sizes (memory is compared between them). */
/** Timed exports per child (after its warm-up); the tables show the median. */
const TIMED_RUNS = 3;
const MODES: Mode[] = ['csv', 'csv-plain', 'jsonl', 'copy'];
/** Azurite modes: the same csv into a blob, by the service and by COPY uploaded as it streams. */
const BLOB_MODES: Mode[] = ['csv-blob', 'copy-blob'];
const CHILD_FLAG = '--export-child';

interface ChildTask {
  url: string;
  userId: string;
  crawlJobId: number;
  mode: Mode;
  outputDir: string;
  /** Force a collection every 250 ms and record the live heap (a separate, slower run). */
  collect: boolean;
  /** Azurite's connection string, for the blob modes. */
  blobs?: string;
  /** Exported once untimed first. */
  warmUpCrawlJobId: number;
  /** Timed exports, the median kept: TIMED_RUNS, or 1 in a smoke run (--quick). */
  timedRuns: number;
}

interface ChildResult {
  rows: number;
  lines: number;
  bytes: number;
  ms: number;
  memory: MemoryPeaks;
}

async function countLines(file: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(file)) {
    for (const byte of chunk as Buffer) if (byte === 10) lines++;
  }
  return lines;
}

/**
 * One export in a process of its own, so its peak memory is the export's alone (not the
 * parent's data loading): the service writing a manifest, or COPY TO STDOUT into a file.
 */
async function child(task: ChildTask): Promise<ChildResult> {
  const memory = sampleMemory(20, { collect: task.collect });
  const container = task.blobs
    ? BlobServiceClient.fromConnectionString(task.blobs).getContainerClient('exports')
    : undefined;
  const client = new Client({ connectionString: task.url });
  const dataSource = new DataSource(dataSourceOptions({ url: task.url, poolSize: 2 }));
  await Promise.all([client.connect(), dataSource.initialize()]);
  const service = new ExportJobService(dataSource, {
    destination: container
      ? new BlobContainerDestination(container)
      : new LocalDirectoryDestination(task.outputDir),
    csvFormulaProtection: task.mode !== 'csv-plain',
  });

  /** One export of the crawl job; where its output is (a file, or a blob to read back). */
  const exportOnce = async (
    crawlJobId: number,
  ): Promise<{ rows: number; file: string; blobName?: string }> => {
    if (task.mode === 'copy' || task.mode === 'copy-blob') {
      const file = path.join(task.outputDir, `copy-${crawlJobId}.csv`);
      const sql =
        `COPY (SELECT ${MANIFEST_COLUMNS.join(', ')} FROM images ` +
        `WHERE crawl_job_id = ${Number(crawlJobId)} ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)`;
      const stream = client.query(copyTo(sql));
      if (task.mode === 'copy-blob') {
        const blobName = `copy-${crawlJobId}.csv`;
        // The same upload the destination does: 8 MiB blocks, 4 in flight.
        await container!.getBlockBlobClient(blobName).uploadStream(stream, 8 << 20, 4);
        return { rows: stream.rowCount, file, blobName };
      }
      await pipeline(stream, createWriteStream(file));
      return { rows: stream.rowCount, file };
    }
    const job = await service.request(task.userId, {
      crawlJobId,
      name: `bench ${task.mode}`,
      format: task.mode === 'jsonl' ? 'jsonl' : 'csv',
    });
    const done = await service.run(job.id, () => memory.sample());
    if (done.status !== 'completed') {
      throw new Error(`export ${done.id} ended ${done.status}: ${done.errorMessage}`);
    }
    const file = container
      ? path.join(task.outputDir, `export-${done.id}.csv`)
      : service.filePath(done);
    return {
      rows: done.exportedImages,
      file,
      blobName: container ? `export-${done.id}.csv` : undefined,
    };
  };

  const cleanUp = async (output: { file: string; blobName?: string }) => {
    if (output.blobName) await container!.getBlobClient(output.blobName).delete();
    else rmSync(output.file, { force: true });
  };
  try {
    // A worker is a long-running process: one untimed export of the small crawl job first, so
    // the timed one runs with warm code and connections.
    await cleanUp(await exportOnce(task.warmUpCrawlJobId));
    // The median of TIMED_RUNS exports: one run alone moved with the shared machine's load.
    // (The memory run, collecting garbage every 250 ms, is not timed: one export.)
    const runs = task.collect ? 1 : task.timedRuns;
    const times: number[] = [];
    let output: Awaited<ReturnType<typeof exportOnce>> | undefined;
    for (let run = 0; run < runs; run++) {
      if (output) await cleanUp(output);
      const start = now();
      output = await exportOnce(task.crawlJobId);
      times.push(now() - start);
    }
    const ms = times.sort((a, b) => a - b)[Math.floor(runs / 2)];
    const peaks = memory.stop();
    if (!output) throw new Error('no timed export ran');
    if (output.blobName) {
      // Read the blob back: its lines are checked like a file's.
      await container!.getBlobClient(output.blobName).downloadToFile(output.file);
    }
    const result = {
      rows: output.rows,
      lines: await countLines(output.file),
      bytes: statSync(output.file).size,
      ms,
      memory: peaks,
    };
    rmSync(output.file, { force: true });
    await cleanUp(output);
    return result;
  } finally {
    await Promise.all([client.end(), dataSource.destroy()]);
  }
}

const inChild = (task: ChildTask) =>
  runInChild<ChildTask, ChildResult>(__filename, CHILD_FLAG, task, { exposeGc: true });

async function run(ctx: BenchContext): Promise<BenchTable[]> {
  const url = await ctx.migratedEmpty('export');
  const dataSource = await ctx.connect(url, 2);
  const { exportSmall, exportLarge } = ctx.sizes;
  const {
    userId,
    crawlJobIds: [small, large],
  } = await crawlJobsOfOneUser(dataSource, 2);
  await ingestImages(dataSource, small, exportSmall, { label: 'loading export images' });
  await ingestImages(dataSource, large, exportLarge, {
    label: 'loading export images',
    start: exportSmall,
  });
  await dataSource.query('VACUUM ANALYZE images');
  await dataSource.destroy();

  const outputDir = mkdtempSync(path.join(tmpdir(), 'pixcrawler-bench-export-'));
  const results = new Map<string, ChildResult>();
  try {
    for (const [crawlJobId, expected] of [
      [small, exportSmall],
      [large, exportLarge],
    ]) {
      for (const mode of MODES) {
        for (const collect of [false, true]) {
          const result = await inChild({
            url,
            userId,
            crawlJobId,
            mode,
            outputDir,
            collect,
            warmUpCrawlJobId: small,
            timedRuns: ctx.sizes.quick ? 1 : TIMED_RUNS,
          });
          // csv files (the service's and COPY's) have a header line; jsonl has none.
          const expectedLines = expected + (mode === 'jsonl' ? 0 : 1);
          if (result.rows !== expected || result.lines !== expectedLines) {
            throw new BenchmarkBroken(
              `${mode} export of ${expected} images: ${result.rows} rows, ${result.lines} lines`,
            );
          }
          results.set(`${mode}:${expected}:${collect}`, result);
        }
      }
    }
    // Both sides in Azure Blob Storage: Azurite on this machine, at the larger size.
    const azurite = await startAzurite();
    try {
      await BlobServiceClient.fromConnectionString(azurite.connectionString)
        .getContainerClient('exports')
        .create();
      for (const mode of BLOB_MODES) {
        const task = {
          url,
          userId,
          crawlJobId: large,
          mode,
          outputDir,
          collect: false,
          warmUpCrawlJobId: small,
          timedRuns: ctx.sizes.quick ? 1 : TIMED_RUNS,
        };
        const result = await inChild({ ...task, blobs: azurite.connectionString });
        if (result.rows !== exportLarge || result.lines !== exportLarge + 1) {
          throw new BenchmarkBroken(`${mode}: ${result.rows} rows, ${result.lines} lines`);
        }
        results.set(`${mode}:${exportLarge}:false`, result);
      }
    } finally {
      await azurite.stop();
    }
  } finally {
    rmSync(outputDir, { recursive: true, force: true });
  }

  const get = (mode: Mode, size: number, collect = false) =>
    results.get(`${mode}:${size}:${collect}`)!;
  const copyRate = perSecond(exportLarge, get('copy', exportLarge).ms);
  const label: Record<Mode, string> = {
    csv: 'ExportJobService, csv manifest',
    'csv-plain': 'ExportJobService, csv manifest, formula rule off',
    jsonl: 'ExportJobService, jsonl manifest',
    copy: 'COPY (SELECT …) TO STDOUT, csv (baseline)',
    'csv-blob': 'ExportJobService, csv manifest to a blob (Azurite)',
    'copy-blob': 'COPY TO STDOUT, csv, uploaded to a blob (Azurite baseline)',
  };
  const blobCopyRate = perSecond(exportLarge, get('copy-blob', exportLarge).ms);
  return [
    {
      title: `Export streaming: ${fmtInt(exportLarge)} images of one crawl job to a file, and to a blob`,
      headers: ['writer', 'rows', 'seconds', 'rows/s', 'vs COPY', 'file size'],
      rows: [...MODES, ...BLOB_MODES].map((mode) => {
        const r = get(mode, exportLarge);
        const rate = perSecond(r.rows, r.ms);
        return [
          label[mode],
          fmtInt(r.rows),
          fmt(r.ms / 1000, 2),
          fmtInt(rate),
          ratio(rate, BLOB_MODES.includes(mode) ? blobCopyRate : copyRate),
          fmtBytes(r.bytes),
        ];
      }),
      notes: [
        `Each export runs in a child process of its own, after one untimed export of the smaller crawl job there; the median of ${TIMED_RUNS} timed exports ` +
          '(a worker is long-running: warm code and connections). Every row count and line count is checked (blobs are read back). The service streams COPY out of ' +
          'PostgreSQL (jsonl converted from binary COPY on the client: jsonl built by the server, each line concatenated in SQL with to_json for the text cells and streamed raw through COPY csv with \\x01 as quote and \\x02 as delimiter, ' +
          'measured 0.42x of COPY against this converter’s 0.81x at 300,000 rows in one run, as the server is the bottleneck and builds twice csv’s bytes), counts records as they pass and records progress (exact counts, at most ' +
          'every 250 ms); its time includes the job bookkeeping. The blob rows compare with COPY uploaded the same way ' +
          '(8 MiB blocks, 4 in flight) to the same Azurite server.',
      ],
    },
    {
      title: `Export memory: peak of the exporting process at ${fmtInt(exportSmall)} vs ${fmtInt(exportLarge)} rows`,
      headers: [
        'writer',
        `peak RSS, ${fmtInt(exportSmall)}`,
        `peak RSS, ${fmtInt(exportLarge)}`,
        'RSS ratio',
        `peak heap, ${fmtInt(exportSmall)}`,
        `peak heap, ${fmtInt(exportLarge)}`,
        'heap ratio',
        `live heap, ${fmtInt(exportSmall)}`,
        `live heap, ${fmtInt(exportLarge)}`,
        'live ratio',
      ],
      rows: MODES.map((mode) => {
        const a = get(mode, exportSmall).memory;
        const b = get(mode, exportLarge).memory;
        const liveA = get(mode, exportSmall, true).memory.peakLiveHeap ?? Number.NaN;
        const liveB = get(mode, exportLarge, true).memory.peakLiveHeap ?? Number.NaN;
        return [
          label[mode],
          fmtBytes(a.peakRss),
          fmtBytes(b.peakRss),
          ratio(b.peakRss, a.peakRss),
          fmtBytes(a.peakHeapUsed),
          fmtBytes(b.peakHeapUsed),
          ratio(b.peakHeapUsed, a.peakHeapUsed),
          fmtBytes(liveA),
          fmtBytes(liveB),
          ratio(liveB, liveA),
        ];
      }),
      notes: [
        'Each export runs in a child process of its own (Node, TypeORM and pg loaded). Peak RSS and peak heap: ' +
          'process.memoryUsage() sampled every 20 ms and after every batch, in the timed run above; they include ' +
          'garbage V8 has not collected yet, so they move with its collection schedule. Live heap: a second, untimed ' +
          'run forcing a full collection every 250 ms, the largest heap still in use after one: what the export holds. ' +
          'Memory that does not grow with the row count means ratios near 1.00x for 10x the rows.',
      ],
    },
  ];
}

export const benchmark: Benchmark = {
  name: 'export-streaming',
  title: '4. Export streaming: ExportJobService vs COPY TO STDOUT',
  run,
};

if (require.main === module) childOrStandalone(benchmark, CHILD_FLAG, child);
