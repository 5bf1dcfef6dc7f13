import type { DataSource } from 'typeorm';
import { JobWorker, type JobWorkerOptions } from '@pixcrawler/data';
import type { Services } from './app';

/**
 * The package's JobWorker beside the HTTP server, on the app's DataSource: validation and export
 * jobs requested through the app start at once (the request's NOTIFY wakes it). Stop it before
 * destroying the DataSource: `await worker.stop(reason)` gives running jobs the grace period,
 * then fails what is left with a message saying why. Or run the worker as its own process
 * instead (`npx pixcrawler-db work`), which scales apart from the app.
 */
export async function startWorker(
  dataSource: DataSource,
  services: Services,
  options: Omit<JobWorkerOptions, 'events'> & { log?: (line: string) => void } = {},
): Promise<JobWorker> {
  const log = options.log ?? console.log;
  const worker = new JobWorker(dataSource, [services.validations.jobs, services.exports.jobs], {
    ...options,
    events: {
      started: (kind, job) => log(`started ${kind} job ${job.id}`),
      finished: (kind, job, ms) => log(`${kind} job ${job.id} ${job.status} in ${ms} ms`),
      recovered: (kind, jobs) =>
        console.warn(
          `failed ${jobs.length} lost ${kind} job(s): ${jobs.map((j) => j.id).join(', ')}`,
        ),
      error: (error) => log(`job worker: ${String(error)}`),
    },
  });
  await worker.start();
  return worker;
}
