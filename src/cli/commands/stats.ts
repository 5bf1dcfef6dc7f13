import type { Command } from 'commander';
import { readDatabaseStats } from '../../inspect/database-stats';
import { ExitCode, outcome, say } from '../output';
import { action, withSession } from '../session';
import { textTable } from '../text-table';

export function registerStats(program: Command): void {
  program
    .command('stats')
    .summary("table sizes and index usage (the guide's Monitoring queries)")
    .description(
      "table and index statistics: the guide's Monitoring queries in one report. Per table its " +
        'row estimate and the size of table, indexes and total (pg_total_relation_size); per ' +
        'index its scans, tuples read and fetched (pg_stat_user_indexes) and size, flagging ' +
        'unused (never scanned) and INVALID indexes',
    )
    .action(
      action(async () =>
        withSession(async ({ dataSource }) => {
          const stats = await readDatabaseStats(dataSource);
          if (stats.standby) {
            say(
              '\nThis server is a standby (read replica): sizes and row estimates are the ' +
                "primary's, but index scans count only the reads this standby answered.",
            );
          }
          say(`\nTables in schema "${stats.schema}" (largest first):`);
          say(
            textTable(
              ['table', 'rows (est.)', 'table', 'indexes', 'total'],
              stats.tables.map((t) => [
                t.table,
                t.rowEstimate,
                t.tableSize,
                t.indexSize,
                t.totalSize,
              ]),
            ),
          );

          const since = stats.statsSince
            ? `since ${stats.statsSince.toISOString()}`
            : 'since statistics began';
          say(`\nIndexes (scans counted ${since}):`);
          say(
            textTable(
              ['table', 'index', 'scans', 'tuples read', 'tuples fetched', 'size', 'flags'],
              stats.indexes.map((i) => [
                i.table,
                i.index,
                i.scans,
                i.tuplesRead,
                i.tuplesFetched,
                i.size,
                [
                  i.primary ? 'primary key' : i.unique ? 'unique' : '',
                  i.valid ? '' : 'INVALID',
                  i.unused ? 'unused' : '',
                ]
                  .filter(Boolean)
                  .join(', '),
              ]),
            ),
          );

          const invalid = stats.indexes.filter((i) => !i.valid);
          const unused = stats.indexes.filter((i) => i.unused && !i.unique && i.valid);
          if (invalid.length > 0) {
            say(
              `\n${invalid.length} INVALID index(es): ${invalid.map((i) => i.index).join(', ')}. ` +
                'Queries do not use them but writes still maintain them; run ' +
                '`pixcrawler-db migrate` (it rebuilds the ones it owns) or REINDEX INDEX CONCURRENTLY.',
            );
          }
          if (unused.length > 0) {
            say(
              `\n${unused.length} index(es) never scanned ${since}: ` +
                `${unused.map((i) => i.index).join(', ')}. ` +
                'On a new or idle database that is expected; on a busy one they only cost writes.',
            );
          }
          return outcome(ExitCode.ok, stats);
        }),
      ),
    );
}
