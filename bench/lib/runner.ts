import { writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BenchContext, datasetSizes, parseArgs, type BenchSizes } from './context';
import { markdownTable, renderTable, type BenchTable } from './report';
import { now } from './timing';

export interface Benchmark {
  /** File name under bench/ without .ts. */
  name: string;
  title: string;
  run(ctx: BenchContext): Promise<BenchTable[]>;
}

/** Thrown by a benchmark whose run broke (double claim, wrong row count): fails the run. */
export class BenchmarkBroken extends Error {
  override name = 'BenchmarkBroken';
}

interface Outcome {
  benchmark: Benchmark;
  tables: BenchTable[];
  seconds: number;
  error?: unknown;
}

function machine(ctx: BenchContext): string[] {
  const cpus = os.cpus();
  return [
    `- CPU: ${cpus[0]?.model.trim() ?? 'unknown'}, ${cpus.length} cores`,
    `- Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    `- OS: ${os.type()} ${os.release()}, Node ${process.version}`,
    `- PostgreSQL: ${ctx.serverVersion} (${ctx.server.embedded ? 'throwaway embedded server, fsync off' : 'DATABASE_URL server'})`,
  ];
}

function sizesLine(sizes: BenchSizes): string {
  const d = datasetSizes(sizes);
  return (
    `Legacy dataset: ${d.images.toLocaleString('en-US')} images, ` +
    `${d.activityLogs.toLocaleString('en-US')} activity logs, ${d.crawlJobs.toLocaleString('en-US')} crawl jobs, ` +
    `${d.projects.toLocaleString('en-US')} projects, ${d.profiles.toLocaleString('en-US')} profiles. ` +
    `Ingest ${sizes.ingestRows.toLocaleString('en-US')} rows (save() ${sizes.saveRows.toLocaleString('en-US')}), ` +
    `exports of ${sizes.exportSmall.toLocaleString('en-US')} and ${sizes.exportLarge.toLocaleString('en-US')} images, ` +
    `${sizes.claimJobs.toLocaleString('en-US')} jobs per claiming run, with 0 and ` +
    `${sizes.claimHistory.toLocaleString('en-US')} finished jobs in the table.`
  );
}

async function writeDocs(
  ctx: BenchContext,
  outcomes: Outcome[],
  wallSeconds: number,
): Promise<string> {
  const file = path.join(__dirname, '..', '..', 'docs', 'benchmarks.md');
  const parts = [
    '# Benchmarks',
    '',
    'Written by `npm run bench` (the last full run). Every figure is measured against a baseline ' +
      'in the same run on the same server; see bench/ for what each benchmark does. ' +
      '`npm run bench -- --quick` is the smoke run CI does (small sizes; it fails only when a benchmark ' +
      'breaks, never on a figure); `npx ts-node --transpile-only bench/<name>.ts [--quick]` runs one ' +
      'benchmark; `--images <n>` sets the dataset size; with DATABASE_URL set, the databases are ' +
      'created (and dropped) on that server instead of a throwaway embedded one.',
    '',
    `Run: ${new Date().toISOString()}, ${wallSeconds.toFixed(0)} s wall time.`,
    '',
    ...machine(ctx),
    '',
    sizesLine(ctx.sizes),
  ];
  for (const outcome of outcomes) {
    parts.push('', `## ${outcome.benchmark.title}`, '');
    parts.push(`\`bench/${outcome.benchmark.name}.ts\`, ${outcome.seconds.toFixed(0)} s.`);
    if (outcome.error) parts.push('', `FAILED: ${String(outcome.error)}`);
    for (const table of outcome.tables) parts.push('', markdownTable(table));
  }
  mkdirSync(path.dirname(file), { recursive: true });
  // Formatted as the repository's prettier check expects (aligned table columns).
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  writeFileSync(file, await prettier.format(parts.join('\n'), { ...options, filepath: file }));
  return file;
}

/**
 * Runs the given benchmarks one after another on one server and prints each one's tables. A
 * benchmark fails only when it breaks (an exception, a double claim, a wrong row count), never
 * on a figure; the others still run, and the exit code says whether any broke. `writeDocs`
 * records a full run's tables in docs/benchmarks.md.
 */
export async function runBenchmarks(
  benchmarks: Benchmark[],
  argv: string[] = process.argv.slice(2),
  options: { writeDocs?: boolean } = {},
): Promise<boolean> {
  const sizes = parseArgs(argv);
  const started = now();
  const ctx = await BenchContext.start(sizes);
  const outcomes: Outcome[] = [];
  try {
    console.log(`Benchmarks on ${ctx.label}${sizes.quick ? ' (--quick)' : ''}`);
    console.log(sizesLine(sizes));
    for (const benchmark of benchmarks) {
      console.log(`\n== ${benchmark.title} (bench/${benchmark.name}.ts)`);
      const t = now();
      const outcome: Outcome = { benchmark, tables: [], seconds: 0 };
      try {
        outcome.tables = await benchmark.run(ctx);
      } catch (error) {
        outcome.error = error;
      }
      outcome.seconds = (now() - t) / 1000;
      outcomes.push(outcome);
      for (const table of outcome.tables) console.log(`\n${renderTable(table)}`);
      if (outcome.error) {
        console.error(`\nFAILED: ${benchmark.name}`, outcome.error);
      }
      console.log(`\n(${outcome.seconds.toFixed(1)} s)`);
    }
    const wall = (now() - started) / 1000;
    if (options.writeDocs && !sizes.quick) {
      console.log(`\nWrote ${await writeDocs(ctx, outcomes, wall)}`);
    }
    console.log(`\nTotal wall time ${wall.toFixed(1)} s`);
  } finally {
    await ctx.close();
  }
  const failed = outcomes.filter((o) => o.error).map((o) => o.benchmark.name);
  if (failed.length) console.error(`\nBroken benchmarks: ${failed.join(', ')}`);
  return failed.length === 0;
}

/** The bottom of every bench/<name>.ts: run just this one when the file is executed. */
export function runStandalone(benchmark: Benchmark): void {
  runBenchmarks([benchmark]).then(
    (ok) => process.exit(ok ? 0 : 1),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
