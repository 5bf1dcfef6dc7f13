import { randomUUID } from 'node:crypto';
import { Client, type ClientBase, type Notification } from 'pg';
import type { DataSource } from 'typeorm';
import { assertConnectionBudget } from '../../connection/connection-budget';
import { assertPostgresUrl } from '../../connection/database-url';
import { MAX_ID } from '../../entities/columns';
import { ValidationError } from '../../errors';
import { JOB_CHANNEL } from '../../repositories/job-lifecycle';
import type { JobRunOptions, RunnableJob, RunnableJobKind } from './job-runner';

/** The table a NOTIFY names (its payload) for each kind of job. */
const TABLE_OF: Record<RunnableJobKind, string> = {
  validation: 'validation_jobs',
  export: 'export_jobs',
};

export interface JobWorkerOptions {
  /** Jobs run at once, of all kinds together. Default 1. */
  concurrency?: number;
  /**
   * Seconds a running job may go without a heartbeat before stale recovery fails it as lost
   * (its worker died). Every worker beats well inside it (a quarter of it, at least every 30 s).
   * Default 300.
   */
  leaseSeconds?: number;
  /**
   * The fallback poll, for notifications a worker missed (its listening connection was lost).
   * Default 30 s. While the worker's LISTEN is not proven to work (`listenFailed`), it polls
   * every second at most.
   */
  pollIntervalMs?: number;
  /**
   * A database URL for the worker's LISTEN connection alone (a client of its own, outside the
   * DataSource's pool). For a DataSource that goes through a pooler in transaction mode, which
   * does not pass notifications on: give it a URL that reaches the server directly (or a pool
   * in session mode) and wake-ups stay instant while queries go through the pooler.
   */
  listenUrl?: string;
  /** How often this worker fails stale jobs (of any worker). Default half the lease, at most 60 s. */
  recoveryIntervalMs?: number;
  /** How long running jobs may take to finish after a stop before they are failed. Default 30 s. */
  gracePeriodMs?: number;
  /** Aborting it stops the worker gracefully, as `stop()` does (pass one tied to SIGTERM). */
  signal?: AbortSignal;
  events?: JobWorkerEvents;
}

/** What a worker reports as it goes; every callback is optional. */
export interface JobWorkerEvents {
  /** Listening for notifications (again, after `listenerLost`), proven by a NOTIFY of its own. */
  listening?: () => void;
  /**
   * LISTEN was sent, but a NOTIFY of the worker's own did not come back (the connection goes
   * through a pooler in transaction mode?): the worker polls every `pollIntervalMs` instead
   * until a later LISTEN is proven. Told once per lost proof, not on every poll.
   */
  listenFailed?: (pollIntervalMs: number) => void;
  /** The listening connection broke; polling carries on and the worker listens again shortly. */
  listenerLost?: (error: Error) => void;
  started?: (kind: RunnableJobKind, job: RunnableJob) => void;
  /** A run ended: the job is completed, failed (its error_message says why) or cancelled. */
  finished?: (kind: RunnableJobKind, job: RunnableJob, milliseconds: number) => void;
  /** Running jobs of dead workers, failed by stale recovery. */
  recovered?: (kind: RunnableJobKind, jobs: RunnableJob[]) => void;
  /** stop() began: no more claims; `running` jobs get the grace period. */
  stopping?: (reason: string, running: number) => void;
  /** After the grace period: these jobs were failed with `message`. */
  abandoned?: (kind: RunnableJobKind, job: RunnableJob, message: string) => void;
  /** A claim, recovery or run failed unexpectedly (the database went away?); the worker goes on. */
  error?: (error: unknown) => void;
}

/** What the worker needs of a kind of job: a JobRunner (a service's `jobs`) is one. */
export interface RunnableJobs {
  readonly kind: RunnableJobKind;
  claimNext(): Promise<RunnableJob | null>;
  run(
    job: RunnableJob,
    options: Pick<JobRunOptions<never, never>, 'abandon' | 'heartbeatMs'>,
  ): Promise<RunnableJob>;
  recoverStale(leaseSeconds: number): Promise<RunnableJob[]>;
}

interface Running {
  kind: RunnableJobKind;
  job: RunnableJob;
  abandon: AbortController;
  done: Promise<void>;
}

/** A connection the worker LISTENs on, and how to give it back. */
interface Listener {
  client: ClientBase;
  close(): Promise<void>;
}

/** How long the worker waits for its own NOTIFY to come back before it calls LISTEN deaf. */
const LISTEN_PROOF_MS = 2_000;
/** The poll while LISTEN is not proven to work. */
const DEAF_POLL_MS = 1_000;

/** After abandoning, how long to wait for the runs to notice before returning anyway. */
const SETTLE_MS = 5_000;

/** The longest delay a Node timer takes; a longer one fires at once (after a warning). */
const MAX_TIMER_MS = 2_147_483_647;
/** A heartbeat at least this often, however long the lease. */
const MAX_HEARTBEAT_MS = 30_000;

/** A setting within its range, or a message for it in `fields`; the default when unset. */
function setting(
  fields: Record<string, string[]>,
  name: string,
  value: number | undefined,
  fallback: number,
  { integer = false, min = 1, max }: { integer?: boolean; min?: number; max: number },
): number {
  if (value === undefined) return fallback;
  const ok =
    Number.isFinite(value) && value >= min && value <= max && (!integer || Number.isInteger(value));
  if (!ok) {
    fields[name] = [
      `${name} must be a ${integer ? 'whole ' : ''}number from ${min} to ${max}, got ${value}`,
    ];
  }
  return value;
}

/**
 * Runs validation and export jobs: up to `concurrency` at once, claimed as they are requested.
 *
 * - Wake-up: the worker LISTENs on the jobs channel; a request or a retry sends a NOTIFY in its
 *   own transaction, so a worker wakes the moment the job is visible and never before. A slow
 *   poll catches what a lost notification would have missed. No busy polling.
 * - Heartbeat: each running job is touched every quarter lease (at least every 30 s), apart
 *   from its progress writes (JobRunner); stale recovery, run periodically, fails running jobs
 *   of any worker that missed their heartbeats for a whole lease (the worker died).
 * - Shutdown: `stop()` (or the `signal`) stops claiming, waits up to the grace period for the
 *   running jobs, then fails what is left with a message saying why. Nothing stays `running`
 *   with no worker (if even that fails, recovery fails the job after the lease).
 */
export class JobWorker {
  private readonly runners: RunnableJobs[];
  private readonly concurrency: number;
  private readonly leaseSeconds: number;
  private readonly heartbeatMs: number;
  private readonly pollIntervalMs: number;
  private readonly recoveryIntervalMs: number;
  private readonly gracePeriodMs: number;
  private readonly events: JobWorkerEvents;
  private readonly running = new Set<Running>();
  private readonly timers: NodeJS.Timeout[] = [];
  private pollTimer?: NodeJS.Timeout;
  /** Whether the current LISTEN was proven by a NOTIFY of the worker's own. */
  private heard = false;
  private state: 'new' | 'running' | 'stopping' | 'stopped' = 'new';
  private listener?: Listener;
  private detachListener?: () => void;
  private relisten?: NodeJS.Timeout;
  private filling?: Promise<void>;
  private fillAgain = false;
  private nextRunner = 0;
  private stopped?: Promise<void>;
  private resolveDone!: () => void;
  /** Resolves once the worker has stopped (after `stop()` or the signal). */
  readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  constructor(
    private readonly dataSource: DataSource,
    runners: readonly RunnableJobs[],
    private readonly options: JobWorkerOptions = {},
  ) {
    const fields: Record<string, string[]> = {};
    if (runners.length === 0) fields.runners = ['give at least one kind of job to run'];
    this.runners = [...runners];
    this.concurrency = setting(fields, 'concurrency', options.concurrency, 1, {
      integer: true,
      max: 1000,
    });
    this.leaseSeconds = setting(fields, 'leaseSeconds', options.leaseSeconds, 300, {
      integer: true,
      max: MAX_ID,
    });
    this.heartbeatMs = Math.min((this.leaseSeconds * 1000) / 4, MAX_HEARTBEAT_MS);
    this.pollIntervalMs = setting(fields, 'pollIntervalMs', options.pollIntervalMs, 30_000, {
      max: MAX_TIMER_MS,
    });
    this.recoveryIntervalMs = setting(
      fields,
      'recoveryIntervalMs',
      options.recoveryIntervalMs,
      Math.min(60_000, (this.leaseSeconds * 1000) / 2),
      { max: MAX_TIMER_MS },
    );
    this.gracePeriodMs = setting(fields, 'gracePeriodMs', options.gracePeriodMs, 30_000, {
      min: 0,
      max: MAX_TIMER_MS,
    });
    if (options.listenUrl !== undefined) {
      try {
        assertPostgresUrl(options.listenUrl, 'listenUrl');
      } catch (error) {
        fields.listenUrl = [(error as Error).message];
      }
    }
    if (Object.keys(fields).length > 0) throw new ValidationError(fields);
    this.events = options.events ?? {};
  }

  /**
   * The most connections a worker of this concurrency holds: two per running job (its work and
   * its heartbeat) and one to listen. A pool for it needs at least this many.
   */
  static connectionsFor(concurrency: number): number {
    return concurrency * 2 + 1;
  }

  /** Kinds of job this worker runs. */
  get kinds(): RunnableJobKind[] {
    return this.runners.map((runner) => runner.kind);
  }

  /** Jobs running now. */
  get active(): number {
    return this.running.size;
  }

  /**
   * Listens, recovers stale jobs, claims what is pending and keeps going until stopped. Resolves
   * once running (await `done` for the end). Throws when the database cannot be reached.
   */
  async start(): Promise<void> {
    if (this.state !== 'new') throw new Error('a JobWorker starts once; create a new one');
    this.state = 'running';
    const { signal } = this.options;
    if (signal?.aborted) {
      void this.stop(String(signal.reason ?? 'aborted'));
      return;
    }
    signal?.addEventListener('abort', () => void this.stop(String(signal.reason ?? 'aborted')), {
      once: true,
    });
    try {
      // A concurrency the server cannot serve is refused before a connection is opened for it.
      await assertConnectionBudget(
        this.dataSource,
        JobWorker.connectionsFor(this.concurrency),
        `A worker with concurrency ${this.concurrency}`,
      );
    } catch (error) {
      await this.stop('its concurrency needs more connections than the server allows');
      throw error;
    }
    try {
      await this.listen();
    } catch (error) {
      await this.stop('the database could not be reached');
      throw error;
    }
    await this.recover();
    this.poll();
    this.timers.push(setInterval(() => void this.recover(), this.recoveryIntervalMs));
    this.fill();
  }

  /**
   * Stops claiming, lets running jobs finish within the grace period, then fails what is left
   * with a message naming `reason`. Resolves when stopped; calling it again returns the same.
   */
  stop(reason = 'stop requested'): Promise<void> {
    this.stopped ??= this.shutDown(reason).finally(() => {
      this.state = 'stopped';
      this.resolveDone();
    });
    return this.stopped;
  }

  private async shutDown(reason: string): Promise<void> {
    this.state = 'stopping';
    for (const timer of this.timers) clearInterval(timer);
    clearInterval(this.pollTimer);
    clearTimeout(this.relisten);
    await this.unlisten();
    await this.filling;
    this.events.stopping?.(reason, this.running.size);
    if (this.running.size === 0) return;

    const all = Promise.all([...this.running].map((entry) => entry.done));
    let graceTimer: NodeJS.Timeout | undefined;
    const graceOver = await Promise.race([
      all.then(() => false),
      new Promise<boolean>(
        (resolve) => (graceTimer = setTimeout(() => resolve(true), this.gracePeriodMs)),
      ),
    ]);
    clearTimeout(graceTimer);
    if (!graceOver) return;

    const seconds = this.gracePeriodMs / 1000;
    for (const entry of this.running) {
      const message =
        `worker stopped (${reason}) before the job finished: it ran past the ${seconds} s grace ` +
        'period. Retry the job to run it again.';
      entry.abandon.abort(message);
      this.events.abandoned?.(entry.kind, entry.job, message);
    }
    let settleTimer: NodeJS.Timeout | undefined;
    await Promise.race([
      all,
      new Promise((resolve) => (settleTimer = setTimeout(resolve, SETTLE_MS))),
    ]);
    clearTimeout(settleTimer);
  }

  /**
   * Claims jobs until `concurrency` run or none is pending. One fill at a time; a wake-up during
   * one (a notification, a finished job) runs another after it, so none is lost.
   */
  private fill(): void {
    if (this.state !== 'running') return;
    if (this.filling) {
      this.fillAgain = true;
      return;
    }
    this.fillAgain = false;
    this.filling = this.claimUntilFull().finally(() => {
      this.filling = undefined;
      if (this.fillAgain) this.fill();
    });
  }

  private async claimUntilFull(): Promise<void> {
    try {
      while (this.state === 'running' && this.running.size < this.concurrency) {
        if (!(await this.claimOne())) return;
      }
    } catch (error) {
      // The database went away mid-claim: the next poll tries again.
      this.events.error?.(error);
    }
  }

  /** Claims one job, taking the kinds in turn so that one kind's backlog does not starve the other. */
  private async claimOne(): Promise<boolean> {
    for (let i = 0; i < this.runners.length; i++) {
      const index = (this.nextRunner + i) % this.runners.length;
      const runner = this.runners[index];
      const job = await runner.claimNext();
      if (job) {
        this.nextRunner = (index + 1) % this.runners.length;
        this.launch(runner, job);
        return true;
      }
    }
    return false;
  }

  private launch(runner: RunnableJobs, job: RunnableJob): void {
    const abandon = new AbortController();
    const started = Date.now();
    const entry: Running = { kind: runner.kind, job, abandon, done: Promise.resolve() };
    this.running.add(entry);
    this.events.started?.(runner.kind, job);
    entry.done = runner
      .run(job, { abandon: abandon.signal, heartbeatMs: this.heartbeatMs })
      .then(
        (finished) => this.events.finished?.(runner.kind, finished, Date.now() - started),
        (error: unknown) => this.events.error?.(error),
      )
      .finally(() => {
        this.running.delete(entry);
        this.fill();
      });
  }

  private async recover(): Promise<void> {
    for (const runner of this.runners) {
      try {
        const recovered = await runner.recoverStale(this.leaseSeconds);
        if (recovered.length > 0) this.events.recovered?.(runner.kind, recovered);
      } catch (error) {
        this.events.error?.(error);
      }
    }
  }

  /**
   * The fallback poll: every `pollIntervalMs` while LISTEN is proven to work, every second at
   * most while it is not.
   */
  private poll(): void {
    clearInterval(this.pollTimer);
    if (this.state !== 'running') return;
    const every = this.heard ? this.pollIntervalMs : Math.min(this.pollIntervalMs, DEAF_POLL_MS);
    this.pollTimer = setInterval(() => this.fill(), every);
  }

  /** A connection to LISTEN on: a client of its own for `listenUrl`, else one of the pool. */
  private async connectListener(): Promise<Listener> {
    const { listenUrl } = this.options;
    if (listenUrl !== undefined) {
      const client = new Client({ connectionString: listenUrl });
      // An error once the listener is detached (while it closes) must not crash the process.
      client.on('error', () => undefined);
      try {
        await client.connect();
      } catch (error) {
        await client.end().catch(() => undefined);
        throw error;
      }
      return { client, close: () => client.end() };
    }
    const runner = this.dataSource.createQueryRunner();
    const client = (await runner.connect()) as ClientBase;
    return { client, close: () => runner.release() };
  }

  /**
   * LISTEN on its own connection, proven by a NOTIFY sent from another connection coming back
   * (a pooler in transaction mode takes LISTEN and passes nothing on); when that connection
   * breaks, listen again after a pause.
   */
  private async listen(): Promise<void> {
    const listener = await this.connectListener();
    const { client } = listener;
    const tables = new Set(this.runners.map((r) => TABLE_OF[r.kind]));
    const proof = `proof:${randomUUID()}`;
    let proven!: () => void;
    const heard = new Promise<void>((resolve) => (proven = resolve));
    try {
      const onNotification = (message: Notification) => {
        if (message.channel !== JOB_CHANNEL) return;
        if (message.payload === proof) proven();
        else if (tables.has(message.payload ?? '')) this.fill();
      };
      const onError = (error: Error) => this.listenerLost(listener, error);
      const onEnd = () => this.listenerLost(listener, new Error('connection ended'));
      client.on('notification', onNotification);
      client.on('error', onError);
      client.on('end', onEnd);
      // A pooled connection goes back to the pool on release: leave nothing of ours on it.
      this.detachListener = () => {
        client.off('notification', onNotification);
        client.off('error', onError);
        client.off('end', onEnd);
      };
      await client.query(`LISTEN ${JOB_CHANNEL}`);
    } catch (error) {
      this.detachListener?.();
      await listener.close().catch(() => undefined);
      throw error;
    }
    this.listener = listener;
    try {
      // Other workers ignore the payload: it names no table.
      await this.dataSource.query('SELECT pg_notify($1, $2)', [JOB_CHANNEL, proof]);
    } catch (error) {
      if (this.listener === listener) {
        this.listener = undefined;
        this.detachListener?.();
        await listener.close().catch(() => undefined);
      }
      throw error;
    }
    let timer: NodeJS.Timeout | undefined;
    this.heard = await Promise.race([
      heard.then(() => true),
      new Promise<boolean>(
        (resolve) => (timer = setTimeout(() => resolve(false), LISTEN_PROOF_MS)),
      ),
    ]);
    clearTimeout(timer);
    if (this.listener !== listener) return; // lost or stopped meanwhile: told already
    if (this.heard) this.events.listening?.();
    else this.events.listenFailed?.(Math.min(this.pollIntervalMs, DEAF_POLL_MS));
  }

  private listenerLost(listener: Listener, error: Error): void {
    if (this.listener !== listener || this.state !== 'running') return;
    this.listener = undefined;
    this.heard = false;
    this.detachListener?.();
    void listener.close().catch(() => undefined);
    this.events.listenerLost?.(error);
    this.poll();
    const retry = () => {
      if (this.state !== 'running') return;
      this.listen().then(
        () => {
          this.poll();
          this.fill(); // whatever was requested while deaf
        },
        () => (this.relisten = setTimeout(retry, Math.min(this.pollIntervalMs, 5_000))),
      );
    };
    this.relisten = setTimeout(retry, Math.min(this.pollIntervalMs, 1_000));
  }

  private async unlisten(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    if (!listener) return;
    await listener.client.query(`UNLISTEN ${JOB_CHANNEL}`).catch(() => undefined);
    this.detachListener?.();
    await listener.close().catch(() => undefined);
  }
}
