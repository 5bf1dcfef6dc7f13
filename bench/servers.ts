import { benchmark as exportStreaming } from './export-streaming';
import { benchmark as imageIngest } from './image-ingest';
import { benchmark as jobClaiming } from './job-claiming';
import { BenchContext } from './lib/context';
import { perServerTable, type BenchTable } from './lib/report';
import { runStandalone, type Benchmark } from './lib/runner';
import { BENCH_SERVERS, SETTINGS } from './lib/servers';

/**
 * The benchmarks whose figures depend most on the server (COPY in and out, and the claim's
 * statements), and which of their tables are shown per server.
 */
const PER_SERVER: Array<{ benchmark: Benchmark; tables: number[] }> = [
  { benchmark: imageIngest, tables: [0] },
  { benchmark: exportStreaming, tables: [0] },
  { benchmark: jobClaiming, tables: [0, 1] },
];

/**
 * Ingest, exports and claiming on every server of BENCH_SERVERS in turn, each at its default
 * configuration with fsync on; the run's own server (the rest of docs/benchmarks.md) is not
 * used. `npm run bench` runs it after the other sections, except with --quick: CI's smoke run
 * stays one round on one server. Run on its own with --quick, it is a quick round on each.
 */
async function run(ctx: BenchContext): Promise<BenchTable[]> {
  const servers: BenchTable = {
    title: 'Servers: version and the settings that move the figures',
    headers: ['server', 'version', ...SETTINGS],
    rows: [],
    notes: [
      'Each server at its own defaults, fsync on. The embedded servers are started for the pass ' +
        '(initdb defaults, data on disk under /var/tmp) and deleted after it; the service is the ' +
        'machine’s own (PIXCRAWLER_BENCH_SERVICE_URL, default postgres on 127.0.0.1:5432), ' +
        'where the benchmark creates and drops its own databases. Every ratio compares figures ' +
        'from the same server.',
    ],
  };
  const measured: Array<{ server: string; tables: BenchTable[][] }> = [];
  for (const spec of BENCH_SERVERS) {
    const started = await spec.start();
    if ('unavailable' in started) {
      console.log(`  ${spec.label}: not run (${started.unavailable})`);
      servers.rows.push([spec.label, `not run: ${started.unavailable}`, ...SETTINGS.map(() => '')]);
      continue;
    }
    const serverCtx = await BenchContext.start(ctx.sizes, started);
    try {
      servers.rows.push([
        spec.label,
        serverCtx.serverVersion,
        ...SETTINGS.map((name) => serverCtx.settings[name] ?? '?'),
      ]);
      const tables: BenchTable[][] = [];
      for (const { benchmark, tables: shown } of PER_SERVER) {
        console.log(`  ${spec.label}: ${benchmark.title}`);
        const all = await benchmark.run(serverCtx);
        tables.push(shown.map((index) => all[index]));
      }
      measured.push({ server: spec.label, tables });
    } finally {
      await serverCtx.close();
    }
  }
  const merged: BenchTable[] = [];
  if (measured.length === 0) return [servers];
  PER_SERVER.forEach(({ tables }, b) =>
    tables.forEach((_, t) =>
      merged.push(
        perServerTable(measured.map(({ server, tables }) => ({ server, table: tables[b][t] }))),
      ),
    ),
  );
  return [servers, ...merged];
}

export const benchmark: Benchmark = {
  name: 'servers',
  title: '9. Per server version: ingest, exports and claiming at default settings, fsync on',
  run,
};

if (require.main === module) runStandalone(benchmark);
