import type { JobStatus } from '../../entities/value-sets';
import { IllegalTransitionError } from '../../errors';
import { translated } from '../transaction';

/** The job tables a worker runs. */
export const RUNNABLE_JOB_KINDS = ['validation', 'export'] as const;
export type RunnableJobKind = (typeof RUNNABLE_JOB_KINDS)[number];

export interface RunnableJob {
  id: number;
  status: JobStatus;
}

/** What the runner needs from a job table's repository (ValidationJobRepository, ExportJobRepository). */
export interface RunnableJobTable<J extends RunnableJob, P> {
  claimNext(): Promise<J | null>;
  transition(
    id: number,
    transition: 'start' | 'fail',
    options?: { errorMessage?: string },
  ): Promise<J>;
  /** Writes progress (touching updated_at); false once the job no longer runs. */
  recordProgress(id: number, progress: P): Promise<boolean>;
  /** Touches updated_at only; false once the job no longer runs. */
  heartbeat(id: number): Promise<boolean>;
  findById(id: number): Promise<J | null>;
  recoverStale(leaseSeconds: number): Promise<J[]>;
}

/** What a job's own work gets from the runner. */
export interface JobRun<P> {
  /**
   * Records progress (awaits the listener too). Throws JobStoppedError once the job no longer
   * runs (cancelled, recovered, failed at shutdown): the work ends there and the runner returns
   * the job as it now is.
   */
  progress(progress: P): Promise<void>;
  /** Aborted when the job stopped running under this worker; long steps may watch it. */
  readonly signal: AbortSignal;
}

/**
 * A job's own work (the part that differs between validation and export): does it, reporting
 * progress through `run`, and completes the job with its repository's typed completion method.
 * Returns the completed job.
 */
export type JobWork<J extends RunnableJob, P> = (job: J, run: JobRun<P>) => Promise<J>;

/** Called after each progress write and once with the finished job. */
export type JobProgressListener<J, P> = (progress: P | J) => void | Promise<void>;

export interface JobRunOptions<J, P> {
  onProgress?: JobProgressListener<J, P>;
  /**
   * Abandons the run: the runner fails the job with the signal's reason as the message (the
   * worker does this at shutdown, after the grace period), then lets the work stop at its next
   * progress write.
   */
  abandon?: AbortSignal;
  /** How often the heartbeat touches the job while it runs. Default 10 s. */
  heartbeatMs?: number;
}

/** Thrown inside a run once the job no longer runs under its worker. */
export class JobStoppedError extends Error {
  constructor(readonly jobId: number) {
    super(`job ${jobId} no longer runs`);
    this.name = 'JobStoppedError';
  }
}

const DEFAULT_HEARTBEAT_MS = 10_000;

/**
 * The one job-running skeleton the validation and export services share: claim, heartbeat,
 * progress with stop detection, failure. The services supply only their work.
 *
 * - Heartbeat: a timer touches the job's updated_at while it runs, independently of progress
 *   writes, so a long step (one big image read) never looks like a dead worker to stale
 *   recovery. When a heartbeat finds the job no longer running, the run's signal aborts.
 * - Stop detection: a progress write (or heartbeat) that finds the job no longer running ends
 *   the work quietly; the run returns the job as it now is (cancelled, failed by recovery).
 * - Failure: anything else the work throws fails the job with "<kind> failed: <message>".
 * - Recovery: `recoverStale` fails running jobs whose heartbeat stopped for a whole lease, then
 *   lets the service clean up after them (`afterRecovery`).
 */
export class JobRunner<J extends RunnableJob, P> {
  constructor(
    readonly kind: RunnableJobKind,
    private readonly table: RunnableJobTable<J, P>,
    private readonly work: JobWork<J, P>,
    private readonly hooks: {
      /** Cleans up after jobs stale recovery failed (an export's files of a lost worker). */
      afterRecovery?: (jobs: J[]) => Promise<void>;
    } = {},
  ) {}

  /** Claims the oldest pending job (running it is `run`'s); null when none is pending. */
  claimNext(): Promise<J | null> {
    return this.table.claimNext();
  }

  /** Starts a given pending job (IllegalTransitionError when it is not pending). */
  start(id: number): Promise<J> {
    return translated(() => this.table.transition(id, 'start'));
  }

  /** Fails running jobs with no heartbeat for longer than the lease (their worker is lost). */
  async recoverStale(leaseSeconds: number): Promise<J[]> {
    const recovered = await this.table.recoverStale(leaseSeconds);
    if (recovered.length > 0) await this.hooks.afterRecovery?.(recovered);
    return recovered;
  }

  /** Runs a claimed (running) job to its end: completed, failed, or stopped under it. */
  async run(job: J, options: JobRunOptions<J, P> = {}): Promise<J> {
    const stopped = new AbortController();
    const abandon = options.abandon;
    let abandoning: Promise<unknown> | undefined;
    const onAbandon = () => {
      // If even this fails (connection lost), stale recovery fails the job after the lease.
      abandoning = this.failIfRunning(
        job.id,
        String(abandon?.reason ?? 'the worker stopped'),
      ).catch(() => undefined);
      stopped.abort(abandon?.reason);
    };
    if (abandon?.aborted) onAbandon();
    else abandon?.addEventListener('abort', onAbandon, { once: true });

    const heartbeat = setInterval(() => {
      this.table.heartbeat(job.id).then(
        (running) => running || stopped.abort(new JobStoppedError(job.id)),
        // A lost connection: the next beat tries again; recovery waits a whole lease.
        () => undefined,
      );
    }, options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS);
    heartbeat.unref();

    const run: JobRun<P> = {
      signal: stopped.signal,
      progress: async (progress) => {
        if (stopped.signal.aborted || !(await this.table.recordProgress(job.id, progress))) {
          stopped.abort(new JobStoppedError(job.id));
          throw new JobStoppedError(job.id);
        }
        await options.onProgress?.(progress);
      },
    };

    let finished: J;
    try {
      finished = await this.work(job, run);
    } catch (error) {
      // Stopped under us: cancelled or recovered mid-run, abandoned at shutdown, or changed just
      // before the completing statement (which then refuses with IllegalTransitionError).
      if (
        error instanceof JobStoppedError ||
        error instanceof IllegalTransitionError ||
        stopped.signal.aborted
      ) {
        await abandoning;
        return (await this.table.findById(job.id)) ?? job;
      }
      const message = error instanceof Error ? error.message : String(error);
      // The work may have failed because its connection was lost (terminated, the server
      // restarted): the pool's next connection records the failure, so the job does not stay
      // running until its lease runs out.
      return retryingLostConnections(() =>
        this.table.transition(job.id, 'fail', { errorMessage: `${this.kind} failed: ${message}` }),
      ).catch(() => {
        throw error;
      });
    } finally {
      clearInterval(heartbeat);
      abandon?.removeEventListener('abort', onAbandon);
    }
    // Outside the try: a listener failing after completion does not undo the job.
    await options.onProgress?.(finished);
    return finished;
  }

  /** Fails a job still running with the given message; a job that ended meanwhile stays as it is. */
  private async failIfRunning(id: number, message: string): Promise<void> {
    await retryingLostConnections(() =>
      this.table.transition(id, 'fail', { errorMessage: message }),
    ).catch((error: unknown) => {
      if (!(error instanceof IllegalTransitionError)) throw error;
    });
  }
}

/**
 * Whether an error is a lost connection, not a refusal: the backend was terminated
 * (57P01 admin_shutdown, 57P02, 57P03), the connection broke (08xxx), the socket closed under
 * the driver, or the server turned a new connection away for a while (53300 too many clients;
 * 55000 for a database not accepting connections now, as during maintenance).
 */
export function isLostConnection(error: unknown): boolean {
  const record = error as { code?: string; driverError?: { code?: string }; message?: string };
  const code = record?.driverError?.code ?? record?.code;
  if (code && (/^08/.test(code) || ['57P01', '57P02', '57P03', '53300'].includes(code)))
    return true;
  if (code === '55000' && /not currently accepting connections/.test(record?.message ?? '')) {
    return true;
  }
  if (code && ['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT'].includes(code)) return true;
  return /Connection terminated|connection (is )?closed|Client has encountered a connection error/i.test(
    record?.message ?? '',
  );
}

/**
 * Runs a write again while it fails with a lost connection (the pool hands out a fresh one; a
 * server that refuses connections for a few seconds is waited out), up to about 10 seconds.
 */
export async function retryingLostConnections<T>(work: () => Promise<T>): Promise<T> {
  for (let attempt = 0, delay = 100; ; attempt++, delay = Math.min(delay * 2, 2_000)) {
    try {
      return await work();
    } catch (error) {
      if (!isLostConnection(error) || attempt >= 8) throw error;
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
