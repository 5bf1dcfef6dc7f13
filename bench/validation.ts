import 'reflect-metadata';
import { validityPredicate } from '../src/repositories/image.repository';
import { ValidationJobService } from '../src/services/validation-job.service';
import type { ValidationRules } from '../src/entities/validation-job.entity';
import type { BenchContext } from './lib/context';
import { crawlJobsOfOneUser, ingestImages } from './lib/fixtures';
import { fmt, fmtInt, ratio, type BenchTable } from './lib/report';
import { BenchmarkBroken, runStandalone, type Benchmark } from './lib/runner';
import { median, now, perSecond } from './lib/timing';

/** Rules that read every column a rule can: width, height, size and format. */
const RULES: ValidationRules = {
  minWidth: 200,
  minHeight: 200,
  maxFileSize: 400_000,
  allowedFormats: ['jpg', 'png'],
};
/** Timed rounds of each; the table shows the median. */
const ROUNDS = 3;

interface Counts {
  checked: number;
  invalid: number;
}

/**
 * Validating one crawl job's images: the job as the worker runs it (claim, the scan in batches
 * with a progress write after each, completion), against one SQL statement that computes the
 * same counts with the same predicate and writes nothing.
 */
async function run(ctx: BenchContext): Promise<BenchTable[]> {
  const url = await ctx.migratedEmpty('validation');
  const dataSource = await ctx.connect(url, 4);
  const {
    userId,
    crawlJobIds: [crawlJobId],
  } = await crawlJobsOfOneUser(dataSource, 1);
  const images = ctx.sizes.images;
  await ingestImages(dataSource, crawlJobId, images, { label: 'validation: ingesting images' });
  await ctx.adminQueryOn(url, 'VACUUM ANALYZE images');

  const statement = async (): Promise<Counts> => {
    const params: unknown[] = [crawlJobId];
    const valid = validityPredicate(RULES, params);
    const [row] = await dataSource.query<Array<{ checked: number; invalid: number }>>(
      `SELECT count(*)::int AS checked, count(*) FILTER (WHERE NOT ${valid})::int AS invalid
         FROM images WHERE crawl_job_id = $1`,
      params,
    );
    return row;
  };

  const job = async (batchSize?: number): Promise<Counts & { progressWrites: number }> => {
    const service = new ValidationJobService(dataSource, { batchSize });
    let progressWrites = 0;
    await service.request(userId, { crawlJobId, name: 'bench', rules: RULES });
    const done = await service.runNext(() => {
      progressWrites++;
    });
    if (done?.status !== 'completed') {
      throw new BenchmarkBroken(`the validation job ended ${done?.status ?? 'unclaimed'}`);
    }
    return { checked: done.validatedImages, invalid: done.invalidImages, progressWrites };
  };

  const timed = async <T>(work: () => Promise<T>): Promise<{ ms: number; result: T }[]> => {
    await work(); // warm: the rows in cache, the code compiled, as for a long-running worker
    const rounds: { ms: number; result: T }[] = [];
    for (let i = 0; i < (ctx.sizes.quick ? 1 : ROUNDS); i++) {
      const start = now();
      const result = await work();
      rounds.push({ ms: now() - start, result });
    }
    return rounds;
  };

  const one = await timed(statement);
  const expected = one[0].result;
  const variants: Array<[string, number | undefined]> = [
    ['ValidationJobService, default (batches of about 250 ms)', undefined],
    ['ValidationJobService, batchSize 5000 (the earlier default)', 5000],
  ];
  const rows: Array<Array<string | number>> = [];
  const statementMs = median(one.map((r) => r.ms));
  for (const [label, batchSize] of variants) {
    const rounds = await timed(() => job(batchSize));
    for (const { result } of rounds) {
      if (result.checked !== expected.checked || result.invalid !== expected.invalid) {
        throw new BenchmarkBroken(
          `${label} counted ${result.checked}/${result.invalid}, the statement ` +
            `${expected.checked}/${expected.invalid}`,
        );
      }
    }
    const ms = median(rounds.map((r) => r.ms));
    rows.push([
      label,
      fmtInt(expected.checked),
      fmt(ms / 1000),
      fmtInt(perSecond(expected.checked, ms)),
      ratio(statementMs, ms),
      rounds[0].result.progressWrites,
    ]);
  }
  rows.push([
    'one SQL statement, the same counts (baseline)',
    fmtInt(expected.checked),
    fmt(statementMs / 1000),
    fmtInt(perSecond(expected.checked, statementMs)),
    '1.00x',
    0,
  ]);
  return [
    {
      title: `Validation: ${fmtInt(images)} images of one crawl job, the job vs one SQL statement`,
      headers: [
        'validator',
        'images',
        'seconds',
        'images/s',
        'vs one statement',
        'progress writes',
      ],
      rows,
      notes: [
        'The job is requested and run through ValidationJobService.runNext() (claim, the scan, a progress ' +
          'write after each batch, completion with the crawl job\u2019s valid_images), timed from request to ' +
          'completion. The statement computes the same two counts with the same predicate ' +
          '(validityPredicate: minimum width and height, maximum size, allowed formats) and writes ' +
          'nothing. Each is run once untimed first, then the median of 3 rounds (1 in a smoke run); every round\u2019s counts ' +
          'must equal the statement\u2019s. "vs one statement" is the statement\u2019s time over the ' +
          'job\u2019s (goal: at least 0.5x). The statement runs as a parallel scan; the job\u2019s ' +
          'batches are index scans in id order (a batch ends at its size, the next starts after it).',
      ],
    },
  ];
}

export const benchmark: Benchmark = {
  name: 'validation',
  title: '8. Validation: one pass over the images vs one SQL statement',
  run,
};

if (require.main === module) runStandalone(benchmark);
