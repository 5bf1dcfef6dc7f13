import type { MigrationRefusal } from '../../migrator/migration-refused-error';
import { ADOPTION_REFUSAL_ADVICE, describeOrigin, formatAdoptionReport } from './adoption';
import { formatPreflightReport } from './preflight';

/**
 * The one place that turns a typed refusal of the migrator into what an operator reads: what was
 * found, that nothing changed, and the commands that get them out.
 */
export function refusalMessage(refusal: MigrationRefusal): string {
  switch (refusal.reason) {
    case 'nothing-to-adopt':
      return (
        `--baseline adopts an existing PixCrawler database, but none of its tables ` +
        `(${refusal.expectedTables.join(', ')}) exist here. Nothing was changed.\n` +
        'For a new database run `pixcrawler-db migrate` without --baseline.'
      );
    case 'legacy-shape-mismatch':
      return (
        'The existing tables differ from what the upgrade starts from in ways nothing safe ' +
        'resolves, so it will not adopt them. Nothing was changed.\n' +
        `${formatAdoptionReport(refusal.adoption)}\n${ADOPTION_REFUSAL_ADVICE}`
      );
    case 'unknown-migrations':
      return (
        `This database records migrations this code does not know (${refusal.migrations.join(', ')}). ` +
        'Nothing was changed. Either:\n' +
        "  - they are your application's own migrations, in the same migrations table: run " +
        'pixcrawler-db with your DataSource (`pixcrawler-db -d <data-source file> ...`) so it ' +
        'knows them, or give your migrations a table of their own (migrationsTableName);\n' +
        '  - or a newer release of @pixcrawler/data migrated this database: run that release ' +
        '(or a newer one) instead, as an older one cannot tell what its schema is.'
      );
    case 'adoption-required':
      return (
        `This database already holds PixCrawler tables (${refusal.existingTables.join(', ')}) ` +
        'but no migration is recorded in it: ' +
        (refusal.origin
          ? `it is ${describeOrigin(refusal.origin)}, and `
          : 'it was created before this tool managed it, and ') +
        'running the first migration would fail with "relation already exists". ' +
        'Nothing was changed.\n' +
        'Check the rows first with `pixcrawler-db preflight`, see what the upgrade would do with ' +
        '`pixcrawler-db plan --baseline`, then adopt the database with ' +
        '`pixcrawler-db migrate --baseline`: it classifies how the tables differ from what the ' +
        'upgrade starts from, converts what converts in place, records ' +
        `${refusal.migration} as applied (without running it) and runs the rest.`
      );
    case 'rows-break-constraints':
      return (
        'Existing rows break constraints this migration adds, so it did not start. ' +
        'Nothing was changed.\n' +
        `${formatPreflightReport(refusal.preflight)}\n` +
        'Ways out:\n' +
        '  - `pixcrawler-db preflight --fix` backs up the rows above to a JSON Lines file, then ' +
        'deletes orphans (as CASCADE would), nulls orphaned user_id (as SET NULL would) and ' +
        'clamps out-of-range values and unknown statuses;\n' +
        '  - or repair them by hand (see the ids above), then run `pixcrawler-db migrate` again.'
      );
    case 'transaction-pooling':
      return (
        'The database URL leads to a pooler in transaction mode (PgBouncer with ' +
        '`pool_mode = transaction`, or a managed pooler like it): ' +
        (refusal.backends.length === 1
          ? `another client was handed its server session (backend pid ${refusal.backends[0]}) `
          : `one session of this tool reached several server sessions (backend pids ${refusal.backends.join(', ')}) `) +
        'while it was connected, so the migration lock, which belongs to one server session, ' +
        'would not keep two migrators ' +
        'apart. Nothing was changed.\n' +
        'Run migrate and revert with a URL that reaches the server directly, or ' +
        'a pool in session mode (`pool_mode = session`); applications and workers can keep the ' +
        'pooled URL.'
      );
    case 'revert-drops-data':
      return (
        `Reverting ${refusal.migration} would drop ${refusal.tablesWithRows.join(', ')}, ` +
        'which hold data. Nothing was changed.\nThe upgrade is fully rolled back already: the ' +
        'tables are in the shape they had before it. To remove them anyway, drop them by hand ' +
        '(after pg_dump).'
      );
  }
}
