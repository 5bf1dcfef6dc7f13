import os from 'node:os';
import { ValidationJobRepository } from '../src/repositories/validation-job.repository';
import type { BenchContext } from './lib/context';
import { crawlJobsOfOneUser } from './lib/fixtures';
import { fmt, fmtInt, fmtMs, ratio, type BenchTable } from './lib/report';
import { BenchmarkBroken, runStandalone, type Benchmark } from './lib/runner';
import { median, now, perSecond } from './lib/timing';

/**
 * N workers, each with a connection of its own, claim pending validation jobs (claimNext:
 * UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)) and complete them, doing no
 * work in between, until none is left. Breaks when any job is claimed twice or left unfinished.
 */
async function run(ctx: BenchContext): Promise<BenchTable[]> {
  const url = await ctx.migratedEmpty('claiming');
  const setup = await ctx.connect(url, 1);
  const {
    crawlJobIds: [crawlJobId],
  } = await crawlJobsOfOneUser(setup, 1);
  const jobs = ctx.sizes.claimJobs;
  const rows: Array<Array<string | number>> = [];
  let single = 0;

  for (const workers of ctx.sizes.workers) {
    await setup.query('TRUNCATE validation_jobs RESTART IDENTITY');
    await setup.query(
      `INSERT INTO validation_jobs (crawl_job_id, name) SELECT $1, 'bench ' || g FROM generate_series(1, $2) g`,
      [crawlJobId, jobs],
    );
    await setup.query('VACUUM ANALYZE validation_jobs');
    const sources = await Promise.all(Array.from({ length: workers }, () => ctx.connect(url, 1)));
    const repositories = sources.map((source) => new ValidationJobRepository(source));
    const claimed: number[][] = repositories.map(() => []);
    /** Every claimNext() call's latency, in the order the calls started. */
    const claims: Array<{ at: number; ms: number }> = [];
    const start = now();
    await Promise.all(
      repositories.map(async (repository, w) => {
        for (;;) {
          const at = now();
          const job = await repository.claimNext();
          claims.push({ at, ms: now() - at });
          if (!job) return;
          claimed[w].push(job.id);
          await repository.transition(job.id, 'complete');
        }
      }),
    );
    const ms = now() - start;

    const all = claimed.flat();
    const twice = all.length - new Set(all).size;
    const [{ completed }] = await setup.query(
      `SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed FROM validation_jobs`,
    );
    if (twice > 0) throw new BenchmarkBroken(`${workers} workers: ${twice} job(s) claimed twice`);
    if (all.length !== jobs || completed !== jobs) {
      throw new BenchmarkBroken(
        `${workers} workers: ${all.length} claims, ${completed} completed of ${jobs}`,
      );
    }
    const rate = perSecond(jobs, ms);
    if (workers === ctx.sizes.workers[0]) single = rate;
    const perWorker = claimed.map((c) => c.length);
    claims.sort((a, b) => a.at - b.at);
    const tenth = Math.max(1, Math.floor(claims.length / 10));
    const early = median(claims.slice(0, tenth).map((c) => c.ms));
    const late = median(claims.slice(-tenth).map((c) => c.ms));
    rows.push([
      workers,
      fmtInt(jobs),
      fmt(ms / 1000, 2),
      fmtInt(rate),
      fmtInt(single),
      ratio(rate, single),
      twice,
      `${Math.min(...perWorker)}-${Math.max(...perWorker)}`,
      fmtMs(early),
      fmtMs(late),
    ]);
    await Promise.all(sources.map((source) => source.destroy()));
  }

  return [
    {
      title: `Job claiming: ${fmtInt(jobs)} no-op validation jobs claimed and completed`,
      headers: [
        'workers',
        'jobs',
        'seconds',
        'jobs/s',
        '1 worker (baseline)',
        'ratio',
        'claimed twice',
        'jobs per worker',
        'claim p50, first 10%',
        'claim p50, last 10%',
      ],
      rows,
      notes: [
        'Each worker has its own connection and loops claimNext() then transition(id, "complete") (two statements, ' +
          'each its own transaction) until no job is pending. The run breaks if any job is claimed twice or left ' +
          `unfinished. The last two columns compare claimNext() latency early and late in the run. This machine has the server and the workers on the same ${os.cpus().length} cores.`,
      ],
    },
  ];
}

export const benchmark: Benchmark = {
  name: 'job-claiming',
  title: '6. Job claiming with FOR UPDATE SKIP LOCKED',
  run,
};

if (require.main === module) runStandalone(benchmark);
