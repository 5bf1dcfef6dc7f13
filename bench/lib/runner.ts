import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
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
    `- PostgreSQL: ${ctx.serverVersion} (${ctx.server.embedded ? 'throwaway embedded server' : 'DATABASE_URL server'}): ${ctx.settingsLine}`,
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
    `archives of ${sizes.archiveSmall.toLocaleString('en-US')} and ${sizes.archiveLarge.toLocaleString('en-US')} files ` +
    `(${sizes.azuriteFiles.toLocaleString('en-US')} through Azurite), ` +
    `${sizes.claimJobs.toLocaleString('en-US')} jobs per claiming run, with 0 and ` +
    `${sizes.claimHistory.toLocaleString('en-US')} finished jobs in the table.`
  );
}

/**
 * The heading of docs/benchmarks.md's last section: before-and-after figures of a change, measured
 * by hand side by side (the old code no longer exists to run), which a full run keeps.
 */
const MEASURED_CHANGES = '## Measured changes';

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
      'benchmark (a full-size run replaces its section here); `--images <n>` sets the dataset size; with DATABASE_URL set, the databases are ' +
      'created (and dropped) on that server instead of a throwaway embedded one. Sections 1-8 run on one server (below); section 9 runs ' +
      'ingest, exports and claiming again on each server version (embedded PostgreSQL 18 and 13, the machine’s PostgreSQL service), ' +
      'each at its defaults with fsync on.',
    '',
    `Run: ${new Date().toISOString()}, ${wallSeconds.toFixed(0)} s wall time.`,
    '',
    ...machine(ctx),
    '',
    sizesLine(ctx.sizes),
  ];
  for (const outcome of outcomes) parts.push('', ...section(outcome));
  // Hand-written comparisons of code before and after a change, kept from run to run.
  const previous = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const kept = previous.indexOf(`\n${MEASURED_CHANGES}`);
  if (kept >= 0) parts.push('', previous.slice(kept + 1).trimEnd());
  mkdirSync(path.dirname(file), { recursive: true });
  await writeFormatted(file, parts.join('\n'));
  return file;
}

/** One benchmark's part of docs/benchmarks.md: its heading, duration and tables. */
function section(outcome: Outcome, note?: string): string[] {
  const lines = [`## ${outcome.benchmark.title}`, ''];
  lines.push(
    `\`bench/${outcome.benchmark.name}.ts\`, ${outcome.seconds.toFixed(0)} s.` +
      (note ? ` ${note}` : ''),
  );
  if (outcome.error) lines.push('', `FAILED: ${String(outcome.error)}`);
  for (const table of outcome.tables) lines.push('', markdownTable(table));
  return lines;
}

/**
 * A full-size run of some benchmarks on their own: replaces just their sections of
 * docs/benchmarks.md (found by their `bench/<name>.ts` line), saying when and where they ran.
 */
async function writeSections(ctx: BenchContext, outcomes: Outcome[]): Promise<string> {
  const file = path.join(__dirname, '..', '..', 'docs', 'benchmarks.md');
  let text = readFileSync(file, 'utf8');
  const cpus = os.cpus();
  const note =
    `Run on its own at ${new Date().toISOString()} (${cpus[0]?.model.trim() ?? 'unknown'}, ` +
    `${cpus.length} cores, PostgreSQL ${ctx.serverVersion}); the other sections come from the run above.`;
  for (const outcome of outcomes) {
    const own = section(outcome, note).join('\n');
    const marker = `\`bench/${outcome.benchmark.name}.ts\``;
    const at = text.indexOf(marker);
    const start = at < 0 ? -1 : text.lastIndexOf('\n## ', at) + 1;
    if (start <= 0) {
      // A new section goes before the measured changes, which stay last.
      const changes = text.indexOf(`\n${MEASURED_CHANGES}`);
      text =
        changes < 0
          ? `${text.trimEnd()}\n\n${own}\n`
          : `${text.slice(0, changes).trimEnd()}\n\n${own}\n${text.slice(changes)}`;
      continue;
    }
    const next = text.indexOf('\n## ', at);
    text = text.slice(0, start) + own + (next < 0 ? '\n' : `\n${text.slice(next)}`);
  }
  await writeFormatted(file, text);
  return file;
}

async function writeFormatted(file: string, markdown: string): Promise<void> {
  // Formatted as the repository's prettier check expects (aligned table columns).
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  writeFileSync(file, await prettier.format(markdown, { ...options, filepath: file }));
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
  options: { writeDocs?: 'all' | 'sections' } = {},
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
      const written =
        options.writeDocs === 'all'
          ? await writeDocs(ctx, outcomes, wall)
          : await writeSections(ctx, outcomes);
      console.log(`\nWrote ${written}`);
    }
    console.log(`\nTotal wall time ${wall.toFixed(1)} s`);
  } finally {
    await ctx.close();
  }
  const failed = outcomes.filter((o) => o.error).map((o) => o.benchmark.name);
  if (failed.length) console.error(`\nBroken benchmarks: ${failed.join(', ')}`);
  return failed.length === 0;
}

/**
 * The bottom of every bench/<name>.ts: run just this one when the file is executed. A full-size
 * run (no --quick) also replaces its section of docs/benchmarks.md.
 */
export function runStandalone(benchmark: Benchmark): void {
  runBenchmarks([benchmark], process.argv.slice(2), { writeDocs: 'sections' }).then(
    (ok) => process.exit(ok ? 0 : 1),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
