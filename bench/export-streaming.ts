import { fork } from 'node:child_process';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Client } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../src/connection/data-source-options';
import { ExportJobService, MANIFEST_COLUMNS } from '../src/services/export-job.service';
import { LocalDirectoryStorage } from '../src/storage/image-storage';
import type { BenchContext } from './lib/context';
import { crawlJobsOfOneUser, ingestImages } from './lib/fixtures';
import { sampleMemory, type MemoryPeaks } from './lib/memory';
import { fmt, fmtBytes, fmtInt, ratio, type BenchTable } from './lib/report';
import { BenchmarkBroken, runStandalone, type Benchmark } from './lib/runner';
import { now, perSecond } from './lib/timing';

type Mode = 'csv' | 'jsonl' | 'copy';
const MODES: Mode[] = ['csv', 'jsonl', 'copy'];
const CHILD_FLAG = '--export-child';

interface ChildTask {
  url: string;
  userId: string;
  crawlJobId: number;
  mode: Mode;
  outputDir: string;
  /** Force a collection every 250 ms and record the live heap (a separate, slower run). */
  collect: boolean;
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
  let file: string;
  let rows: number;
  let start: number;
  if (task.mode === 'copy') {
    file = path.join(task.outputDir, `copy-${task.crawlJobId}.csv`);
    const client = new Client({ connectionString: task.url });
    await client.connect();
    start = now();
    try {
      const sql =
        `COPY (SELECT ${MANIFEST_COLUMNS.join(', ')} FROM images ` +
        `WHERE crawl_job_id = ${Number(task.crawlJobId)} ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)`;
      const stream = client.query(copyTo(sql));
      await pipeline(stream, createWriteStream(file));
      rows = stream.rowCount;
    } finally {
      await client.end();
    }
  } else {
    const dataSource = new DataSource(dataSourceOptions({ url: task.url, poolSize: 2 }));
    await dataSource.initialize();
    try {
      const service = new ExportJobService(dataSource, {
        outputDir: task.outputDir,
        storage: new LocalDirectoryStorage(task.outputDir),
      });
      start = now();
      const job = await service.request(task.userId, {
        crawlJobId: task.crawlJobId,
        name: `bench ${task.mode}`,
        format: task.mode,
      });
      const done = await service.run(job.id, () => memory.sample());
      if (done.status !== 'completed') {
        throw new Error(`export ${done.id} ended ${done.status}: ${done.errorMessage}`);
      }
      file = service.filePath(done);
      rows = done.exportedImages;
    } finally {
      await dataSource.destroy();
    }
  }
  const ms = now() - start;
  const peaks = memory.stop();
  const result = {
    rows,
    lines: await countLines(file),
    bytes: statSync(file).size,
    ms,
    memory: peaks,
  };
  rmSync(file, { force: true });
  return result;
}

function inChild(task: ChildTask): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const worker = fork(__filename, [CHILD_FLAG, JSON.stringify(task)], {
      execArgv: ['--expose-gc', '-r', 'ts-node/register/transpile-only'],
    });
    let result: ChildResult | undefined;
    worker.on('message', (message) => {
      result = message as ChildResult;
    });
    worker.on('error', reject);
    worker.on('exit', (code) => {
      if (code === 0 && result) resolve(result);
      else reject(new Error(`export child (${task.mode}) exited with code ${code}`));
    });
  });
}

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
          const result = await inChild({ url, userId, crawlJobId, mode, outputDir, collect });
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
  } finally {
    rmSync(outputDir, { recursive: true, force: true });
  }

  const get = (mode: Mode, size: number, collect = false) =>
    results.get(`${mode}:${size}:${collect}`)!;
  const copyRate = perSecond(exportLarge, get('copy', exportLarge).ms);
  const label: Record<Mode, string> = {
    csv: 'ExportJobService, csv manifest',
    jsonl: 'ExportJobService, jsonl manifest',
    copy: 'COPY (SELECT …) TO STDOUT, csv (baseline)',
  };
  return [
    {
      title: `Export streaming: ${fmtInt(exportLarge)} images of one crawl job to a file`,
      headers: ['writer', 'rows', 'seconds', 'rows/s', 'vs COPY', 'file size'],
      rows: MODES.map((mode) => {
        const r = get(mode, exportLarge);
        const rate = perSecond(r.rows, r.ms);
        return [
          label[mode],
          fmtInt(r.rows),
          fmt(r.ms / 1000, 2),
          fmtInt(rate),
          ratio(rate, copyRate),
          fmtBytes(r.bytes),
        ];
      }),
      notes: [
        'Every row count and file line count is checked. The service also records progress every 1,000 rows.',
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

if (require.main === module) {
  const at = process.argv.indexOf(CHILD_FLAG);
  if (at >= 0) {
    child(JSON.parse(process.argv[at + 1]) as ChildTask).then(
      (result) => process.send!(result, () => process.exit(0)),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  } else {
    runStandalone(benchmark);
  }
}
