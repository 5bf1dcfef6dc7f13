import type { AdoptionReport } from '../upgrade/adoption';
import type { DatabaseOrigin } from '../upgrade/origin';
import type { PreflightReport } from '../upgrade/preflight';

/**
 * Why a migration run did not start, as data: a reason code and what was found. Nothing was
 * changed when one of these is thrown. The words for an operator (and the commands that help)
 * are the CLI's; an application reads `refusal.reason` and the details.
 */
export type MigrationRefusal =
  /** `baseline` was asked for, but none of the tables to adopt exist. */
  | { reason: 'nothing-to-adopt'; migration: string; expectedTables: string[] }
  /**
   * The tables to adopt differ from the legacy shape in ways adoption cannot take: the
   * classification, whose `refusals` say which (upgrade/adoption.ts).
   */
  | { reason: 'legacy-shape-mismatch'; migration: string; adoption: AdoptionReport }
  /**
   * The database records migrations this code does not know: the application's own, in the same
   * table (give the CLI the app's DataSource), or a newer release migrated it.
   */
  | { reason: 'unknown-migrations'; migrations: string[] }
  /** The tables exist but no migration is recorded: adopt them explicitly (`baseline`). */
  | {
      reason: 'adoption-required';
      migration: string;
      existingTables: string[];
      /** Which tool made the database, as its catalog tells. */
      origin?: DatabaseOrigin;
    }
  /** Existing rows break constraints a pending migration adds. */
  | { reason: 'rows-break-constraints'; migrations: string[]; preflight: PreflightReport }
  /** Reverting the adopted migration would drop tables that hold rows. */
  | { reason: 'revert-drops-data'; migration: string; tablesWithRows: string[] }
  /**
   * The connection is not a server session of its own (a pooler in transaction or statement
   * mode: PgBouncer's `pool_mode = transaction`), so the migration lock, a session's advisory
   * lock, would not hold. `backends`: the server sessions (pids) one client session reached.
   */
  | { reason: 'transaction-pooling'; backends: number[] };

export type RefusalReason = MigrationRefusal['reason'];

const SUMMARIES: Record<RefusalReason, string> = {
  'nothing-to-adopt': 'adoption was asked for, but none of the tables to adopt exist',
  'legacy-shape-mismatch': 'the existing tables do not match the shape the upgrade starts from',
  'adoption-required':
    'the tables exist but no migration is recorded: adopt them with the baseline option',
  'rows-break-constraints': 'existing rows break constraints a pending migration adds',
  'revert-drops-data': 'reverting would drop tables that hold rows',
  'unknown-migrations': 'the database records migrations this code does not know',
  'transaction-pooling':
    'the connection goes through a pooler in transaction mode, where the migration lock does not hold',
};

export class MigrationRefusedError extends Error {
  readonly refusal: MigrationRefusal;

  constructor(refusal: MigrationRefusal) {
    super(
      `Migration refused (${refusal.reason}): ${SUMMARIES[refusal.reason]}. Nothing was changed.`,
    );
    this.name = 'MigrationRefusedError';
    this.refusal = refusal;
  }

  get reason(): RefusalReason {
    return this.refusal.reason;
  }

  /** The preflight report behind a `rows-break-constraints` refusal. */
  get preflight(): PreflightReport | undefined {
    return this.refusal.reason === 'rows-break-constraints' ? this.refusal.preflight : undefined;
  }
}
