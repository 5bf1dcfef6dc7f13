import type { Command } from 'commander';
import type { DataSource } from 'typeorm';
import { verifySchema } from '../../inspect/schema-verifier';
import { formatVerificationReport } from '../reports/verify';
import { ExitCode, outcome, say, type CommandOutcome } from '../output';
import { action, withSession } from '../session';

export interface VerifyFlags {
  strict?: boolean;
}

/**
 * Verifies the schema, prints the report and returns the exit code: 1 when anything the
 * entities describe is missing or different (or, with --strict, on warnings too), else 0.
 * Shared by `verify` and `migrate --verify`.
 */
export async function verifyAndReport(
  dataSource: DataSource,
  flags: VerifyFlags = {},
): Promise<CommandOutcome> {
  say('\nVerifying the schema against the entities…');
  const report = await verifySchema(dataSource);
  say(formatVerificationReport(report));
  const failed = !report.ok || (flags.strict && report.warnings > 0);
  return outcome(failed ? ExitCode.differences : ExitCode.ok, report);
}

export function registerVerify(program: Command): void {
  program
    .command('verify')
    .summary(
      "compare the live schema with the entities (the guide's verification script, psql \\d)",
    )
    .description(
      "compare the live schema with the entities: the guide's verification script and " +
        '`psql \\dt`, `\\d <table>`, `\\di`, done for PostgreSQL. Checks tables, columns (type, ' +
        'nullability, default), primary keys, foreign keys with their ON DELETE rule, indexes ' +
        '(columns, uniqueness, INVALID ones), check constraints (NOT VALID ones), pending ' +
        "migrations and TypeORM's own drift check. Exits 1 naming every difference; objects the " +
        'entities do not know are warnings',
    )
    .option('--strict', 'fail on warnings too (extra tables, columns, indexes, constraints)')
    .action(
      action(async (flags: VerifyFlags) =>
        withSession(({ dataSource }) => verifyAndReport(dataSource, flags)),
      ),
    );
}
