import type { Command } from 'commander';
import path from 'node:path';
import { ConnectionBudgetError } from '../../connection/connection-budget';
import { ExportJobService } from '../../services/export-job.service';
import { assertPostgresUrl } from '../../connection/database-url';
import { LocalDirectoryStorage } from '../../storage/image-storage';
import type { RunnableJob, RunnableJobKind } from '../../services/jobs/job-runner';
import { JobWorker, type RunnableJobs } from '../../services/jobs/worker';
import { ValidationJobService } from '../../services/validation-job.service';
import { ExitCode, outcome, say } from '../output';
import { action, OperatorError, stopGracefullyOnSignals, withSession } from '../session';

interface WorkOptions {
  validation?: boolean;
  export?: boolean;
  concurrency: string;
  lease: string;
  poll: string;
  grace: string;
  batchSize?: string;
  exportDir: string;
  imageRoot: string;
  allowHardLinks?: boolean;
  listenUrl?: string;
}

/** A whole number from `min` to `max`, or a usage error (exit 2) naming the flag. */
function wholeNumber(flag: string, raw: string, min: number, max: number): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || value < min || value > max) {
    throw new OperatorError(
      `${flag} must be a whole number from ${min} to ${max}, got "${raw}"`,
      ExitCode.usage,
    );
  }
  return value;
}

/** Seconds a Node timer can wait (2^31 - 1 ms). */
const MAX_TIMER_SECONDS = 2_147_483;

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** `validation job 12 completed in 1.2 s` / `… failed in 0.3 s: <message>` */
function ending(kind: RunnableJobKind, job: RunnableJob, ms: number): string {
  const message = (job as { errorMessage?: string | null }).errorMessage;
  return `${kind} job ${job.id} ${job.status} in ${seconds(ms)}${message ? `: ${message}` : ''}`;
}

export function registerWork(program: Command): void {
  program
    .command('work')
    .summary('run validation and export jobs as they are requested')
    .description(
      'run validation and export jobs until stopped: up to --concurrency at once, woken by ' +
        'PostgreSQL LISTEN/NOTIFY when a job is requested or retried, with a slow poll for ' +
        'missed notifications. Fails jobs of dead workers (no heartbeat for --lease seconds). ' +
        'On SIGTERM or Ctrl-C it stops claiming, gives running jobs --grace seconds, then fails ' +
        'what is left with a message saying why, and exits 0. Without --validation or --export ' +
        'it runs both.',
    )
    .option('--validation', 'run validation jobs')
    .option('--export', 'run export jobs')
    .option('--concurrency <n>', 'jobs run at once', '2')
    .option(
      '--lease <seconds>',
      'a running job with no heartbeat for this long is failed as lost',
      '300',
    )
    .option('--poll <seconds>', 'fallback poll interval, for missed notifications', '30')
    .option('--grace <seconds>', 'time running jobs get to finish on shutdown', '30')
    .option(
      '--batch-size <n>',
      'images per statement and progress write (default: validation batches of about 250 ms, export 1000)',
    )
    .option(
      '--export-dir <path>',
      'where export files are written',
      path.join('.pixcrawler', 'exports'),
    )
    .option('--image-root <path>', 'root of relative image storage_url keys (zip/tar exports)', '.')
    .option(
      '--listen-url <url>',
      'a database URL for LISTEN alone (default PIXCRAWLER_LISTEN_URL): one that reaches the server directly when DATABASE_URL goes through a pooler in transaction mode',
    )
    .option(
      '--allow-hard-links',
      'export image files that have more than one hard link (refused by default: such a file may be a link to one outside the image root)',
    )
    .action(
      action(async (options: WorkOptions) => {
        const concurrency = wholeNumber('--concurrency', options.concurrency, 1, 1000);
        const leaseSeconds = wholeNumber('--lease', options.lease, 1, 2_147_483_647);
        const pollSeconds = wholeNumber('--poll', options.poll, 1, MAX_TIMER_SECONDS);
        const graceSeconds = wholeNumber('--grace', options.grace, 0, MAX_TIMER_SECONDS);
        const batchSize =
          options.batchSize === undefined
            ? undefined
            : wholeNumber('--batch-size', options.batchSize, 1, 1_000_000);
        const both = !options.validation && !options.export;
        const listenUrl = options.listenUrl ?? (process.env.PIXCRAWLER_LISTEN_URL || undefined);
        if (listenUrl !== undefined) {
          try {
            assertPostgresUrl(
              listenUrl,
              options.listenUrl ? '--listen-url' : 'PIXCRAWLER_LISTEN_URL',
            );
          } catch (error) {
            throw new OperatorError((error as Error).message, ExitCode.usage);
          }
        }

        // SIGTERM / Ctrl-C: a graceful stop, not an interruption.
        const stop = new AbortController();
        stopGracefullyOnSignals((signal) => stop.abort(signal));

        return withSession(
          async ({ dataSource }) => {
            const kinds: RunnableJobs[] = [];
            if (both || options.validation) {
              kinds.push(new ValidationJobService(dataSource, { batchSize }).jobs);
            }
            if (both || options.export) {
              kinds.push(
                new ExportJobService(dataSource, {
                  outputDir: options.exportDir,
                  storage: new LocalDirectoryStorage(options.imageRoot, {
                    allowHardLinks: options.allowHardLinks ?? false,
                  }),
                  batchSize,
                }).jobs,
              );
            }
            const totals: Record<string, number> = {};
            let announced = false;
            const announce = () => {
              if (announced) return;
              announced = true;
              say(
                `Working on ${kinds.map((k) => `${k.kind} jobs`).join(' and ')}: up to ` +
                  `${concurrency} at once, lease ${leaseSeconds} s. Stop with SIGTERM or Ctrl-C.`,
              );
            };
            const worker = new JobWorker(dataSource, kinds, {
              concurrency,
              leaseSeconds,
              pollIntervalMs: pollSeconds * 1000,
              gracePeriodMs: graceSeconds * 1000,
              signal: stop.signal,
              listenUrl,
              events: {
                listening: announce,
                listenFailed: (ms) => {
                  announce();
                  console.error(
                    `WARNING: LISTEN does not reach this worker: a NOTIFY it sent itself did not ` +
                      `come back within 2 s. Is the database URL a pooler in transaction mode ` +
                      `(PgBouncer pool_mode = transaction)? Jobs start by polling every ` +
                      `${ms / 1000} s instead of at once. Give the worker a URL that reaches the ` +
                      `server directly for its wake-ups: --listen-url or PIXCRAWLER_LISTEN_URL.`,
                  );
                },
                listenerLost: (error) =>
                  say(
                    `Lost the notification connection (${error.message}); polling every ` +
                      `${Math.min(pollSeconds, 1)} s until it is back.`,
                  ),
                started: (kind, job) => say(`started ${kind} job ${job.id}`),
                finished: (kind, job, ms) => {
                  totals[job.status] = (totals[job.status] ?? 0) + 1;
                  say(`finished ${ending(kind, job, ms)}`);
                },
                recovered: (kind, jobs) =>
                  say(
                    `recovered ${jobs.length} ${kind} job(s) whose worker was lost ` +
                      `(no heartbeat for ${leaseSeconds} s), now failed: ${jobs.map((j) => j.id).join(', ')}`,
                  ),
                stopping: (reason, running) =>
                  say(
                    `Stopping (${reason}): no new jobs; ` +
                      (running === 0
                        ? 'none running.'
                        : `waiting up to ${graceSeconds} s for ${running} running job(s).`),
                  ),
                abandoned: (kind, job) =>
                  say(`failed ${kind} job ${job.id}: still running after the grace period`),
                error: (error) =>
                  console.error(
                    `Error (the worker goes on): ${error instanceof Error ? error.message : String(error)}`,
                  ),
              },
            });
            await worker.start().catch((error: unknown) => {
              if (!(error instanceof ConnectionBudgetError)) throw error;
              const most = Math.max(0, Math.floor((error.budget.available - 2) / 2));
              throw new OperatorError(
                `${error.message} Use at most --concurrency ${most} (fewer when other clients ` +
                  'share the server), or raise max_connections. Nothing was started.',
                ExitCode.usage,
              );
            });
            await worker.done;
            say('Stopped.');
            // Under --json: how the jobs this worker ran ended, by status.
            return outcome(ExitCode.ok, { finished: totals });
          },
          // The worker's connections, and one for the session's own queries.
          { poolSize: JobWorker.connectionsFor(concurrency) + 1 },
        );
      }),
    );
}
