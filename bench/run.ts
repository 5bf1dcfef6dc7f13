import { benchmark as archiveExport } from './archive-export';
import { benchmark as exportStreaming } from './export-streaming';
import { benchmark as imageIngest } from './image-ingest';
import { benchmark as indexSpeedups } from './index-speedups';
import { benchmark as jobClaiming } from './job-claiming';
import { benchmark as liveMigration } from './live-migration';
import { benchmark as servers } from './servers';
import { benchmark as validation } from './validation';
import { benchmark as writeCost } from './write-cost';
import { runBenchmarks } from './lib/runner';

const quick = process.argv.includes('--quick');

/**
 * `npm run bench [-- --quick] [-- --images <n>]`: every benchmark, one after another on one
 * server, then (not with --quick: CI's smoke run stays one round on one server) ingest, exports
 * and claiming on each server version of bench/lib/servers.ts; a full run writes
 * docs/benchmarks.md.
 */
runBenchmarks(
  [
    indexSpeedups,
    writeCost,
    imageIngest,
    exportStreaming,
    archiveExport,
    jobClaiming,
    liveMigration,
    validation,
    ...(quick ? [] : [servers]),
  ],
  process.argv.slice(2),
  { writeDocs: 'all' },
).then(
  (ok) => process.exit(ok ? 0 : 1),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
