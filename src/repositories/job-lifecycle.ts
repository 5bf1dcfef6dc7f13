import type { EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';
import { PENDING_JOB } from '../entities/checks';
import { MAX_ID } from '../entities/columns';
import type { JobStatus } from '../entities/value-sets';
import { IllegalTransitionError, NotFoundError, ValidationError } from '../errors';
import { hydrate, queryRows } from './sql';

/**
 * The job lifecycle, defined once: every status change of a crawl, validation or export job is
 * one of these. Repositories, recovery, claiming and the tests all derive from this table.
 *
 *   pending → running → completed | failed | cancelled
 *   pending → cancelled
 *   failed | cancelled → pending   (explicit retry)
 */
export const JOB_TRANSITIONS = {
  start: { from: ['pending'], to: 'running' },
  complete: { from: ['running'], to: 'completed' },
  fail: { from: ['running'], to: 'failed' },
  cancel: { from: ['pending', 'running'], to: 'cancelled' },
  retry: { from: ['failed', 'cancelled'], to: 'pending' },
} as const satisfies Record<string, { from: readonly JobStatus[]; to: JobStatus }>;

export type JobTransition = keyof typeof JOB_TRANSITIONS;
export const JOB_TRANSITION_NAMES = Object.keys(JOB_TRANSITIONS) as JobTransition[];

export function canTransition(from: JobStatus, transition: JobTransition): boolean {
  return (JOB_TRANSITIONS[transition].from as readonly JobStatus[]).includes(from);
}

/**
 * The channel a NOTIFY on a new pending job goes to; the payload is the job's table. Workers
 * LISTEN on it, so a request wakes them at once instead of at their next poll.
 */
export const JOB_CHANNEL = 'pixcrawler_jobs';

/** Columns every transition sets besides status and updated_at (SQL on trusted column names). */
const TRANSITION_SETS: Record<JobTransition, string[]> = {
  start: ['started_at = now()', 'completed_at = NULL'],
  complete: ['completed_at = now()', 'progress = 100'],
  fail: ['completed_at = now()'],
  cancel: ['completed_at = now()'],
  retry: ['started_at = NULL', 'completed_at = NULL', 'progress = 0'],
};

export interface JobTableSpec<E> {
  entity: EntityTarget<E>;
  table: 'crawl_jobs' | 'validation_jobs' | 'export_jobs';
  /** How errors name the job: "validation job 12 not found". */
  resource: string;
  /** crawl_jobs has no error_message column. */
  hasErrorMessage: boolean;
  /** What a retry clears besides timestamps and progress (SQL assignments). */
  resetOnRetry: string[];
}

/** Values a transition also writes, by column name (fixed names from code; values are bound). */
export type ExtraColumns = Record<string, unknown>;

/**
 * Conditional-UPDATE state machine over one job table. Each change is a single statement
 * `UPDATE … WHERE id = $1 AND status = ANY($2) RETURNING *`, so of two workers racing to start
 * or finish the same job exactly one wins; the loser reads the current status and gets an
 * IllegalTransitionError naming it.
 */
export class JobStateMachine<E extends ObjectLiteral> {
  constructor(readonly spec: JobTableSpec<E>) {}

  private setClause(
    transition: JobTransition,
    errorMessage: string | undefined,
    extra: ExtraColumns,
    params: unknown[],
  ): string {
    const sets = [
      `status = '${JOB_TRANSITIONS[transition].to}'`,
      'updated_at = now()',
      ...TRANSITION_SETS[transition],
    ];
    if (transition === 'retry') sets.push(...this.spec.resetOnRetry);
    if (this.spec.hasErrorMessage) {
      if (transition === 'fail') {
        params.push(errorMessage ?? 'failed');
        sets.push(`error_message = $${params.length}`);
      } else if (transition === 'start' || transition === 'retry') {
        sets.push('error_message = NULL');
      }
    }
    for (const [column, value] of Object.entries(extra)) {
      params.push(value);
      sets.push(`${column} = $${params.length}`);
    }
    return sets.join(', ');
  }

  async transition(
    manager: EntityManager,
    id: number,
    transition: JobTransition,
    options: { errorMessage?: string; extra?: ExtraColumns } = {},
  ): Promise<E> {
    const params: unknown[] = [id, JOB_TRANSITIONS[transition].from];
    const set = this.setClause(transition, options.errorMessage, options.extra ?? {}, params);
    const [row] = await queryRows(
      manager,
      `UPDATE ${this.spec.table} SET ${set} WHERE id = $1 AND status = ANY($2::text[]) RETURNING *`,
      params,
    );
    if (row) return hydrate(manager, this.spec.entity, row);
    const [current] = await queryRows<{ status: JobStatus }>(
      manager,
      `SELECT status FROM ${this.spec.table} WHERE id = $1`,
      [id],
    );
    if (!current) throw new NotFoundError(this.spec.resource, id);
    throw new IllegalTransitionError(this.spec.resource, id, current.status, transition);
  }

  /**
   * Atomically claims the oldest pending job (the `start` transition) or returns null. SKIP
   * LOCKED lets N workers claim concurrently without blocking on each other's candidate row.
   *
   * The condition is the literal `"status" = 'pending'` (PENDING_JOB), not a bound parameter: it
   * matches the predicate of the partial index holding only the pending jobs
   * (ix_validation_job_pending, ix_export_job_pending), so the planner reads that index's first
   * entry instead of walking the primary key past every finished job.
   */
  async claimNext(manager: EntityManager): Promise<E | null> {
    const set = this.setClause('start', undefined, {}, []);
    const [row] = await queryRows(
      manager,
      `UPDATE ${this.spec.table} SET ${set}
        WHERE id = (SELECT id FROM ${this.spec.table}
                     WHERE ${PENDING_JOB}
                     ORDER BY id
                     FOR UPDATE SKIP LOCKED
                     LIMIT 1)
        RETURNING *`,
    );
    return row ? hydrate(manager, this.spec.entity, row) : null;
  }

  /**
   * A running job's heartbeat: touches updated_at (what stale recovery looks at) and nothing
   * else, so a job busy on one long step does not look dead. False when the job no longer runs
   * (cancelled, recovered, failed at shutdown): its worker should stop.
   */
  async heartbeat(manager: EntityManager, id: number): Promise<boolean> {
    const rows = await queryRows(
      manager,
      `UPDATE ${this.spec.table} SET updated_at = now() WHERE id = $1 AND status = 'running' RETURNING id`,
      [id],
    );
    return rows.length === 1;
  }

  /**
   * Tells listening workers that a job of this table became pending. Call it inside the
   * transaction that inserts or retries the job: PostgreSQL delivers a NOTIFY only at commit, so
   * no worker wakes before the row is visible (and none wakes for a rolled-back request).
   */
  async notifyPending(manager: EntityManager): Promise<void> {
    await queryRows(manager, `SELECT pg_notify($1, $2)`, [JOB_CHANNEL, this.spec.table]);
  }

  /**
   * Fails every running job whose worker has shown no sign of life (no update of updated_at)
   * for longer than the lease, so nothing stays running forever. Heartbeats and progress
   * updates touch updated_at.
   */
  async recoverStale(manager: EntityManager, leaseSeconds: number): Promise<E[]> {
    if (!Number.isInteger(leaseSeconds) || leaseSeconds < 1 || leaseSeconds > MAX_ID) {
      throw new ValidationError({
        leaseSeconds: [`leaseSeconds must be a whole number from 1 to ${MAX_ID}`],
      });
    }
    const params: unknown[] = [JOB_TRANSITIONS.fail.from, leaseSeconds];
    const sets = [
      `status = '${JOB_TRANSITIONS.fail.to}'`,
      'updated_at = now()',
      ...TRANSITION_SETS.fail,
    ];
    if (this.spec.hasErrorMessage) {
      sets.push(
        `error_message = format('worker lost: no heartbeat for more than %s seconds (last update %s); retry the job to run it again', $2::int, updated_at)`,
      );
    }
    const rows = await queryRows(
      manager,
      `UPDATE ${this.spec.table} SET ${sets.join(', ')}
        WHERE status = ANY($1::text[]) AND updated_at < now() - make_interval(secs => $2::int)
        RETURNING *`,
      params,
    );
    return rows.map((row) => hydrate(manager, this.spec.entity, row));
  }
}
