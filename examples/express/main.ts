import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions, openDatabaseTarget } from '@pixcrawler/data';
import { buildServices, createApp } from './app';
import { startWorker } from './worker';

/**
 * Serves the example on PORT (default 3000), on DATABASE_URL's database or, when it is unset,
 * the package's embedded PostgreSQL (the same one `npm run cli -- migrate` uses). Migrations are
 * not run here: a release runs them before the app starts.
 */
async function main(): Promise<void> {
  const target = await openDatabaseTarget();
  const dataSource = new DataSource(dataSourceOptions({ url: target.url }));
  await dataSource.initialize();
  const services = buildServices(dataSource, {
    exportDir: process.env.EXPORT_DIR,
    imageDir: process.env.IMAGE_DIR,
  });
  const app = createApp(services);
  // The job worker runs beside the app unless RUN_WORKER=0 (then run `npx pixcrawler-db work`).
  const worker =
    process.env.RUN_WORKER === '0'
      ? undefined
      : await startWorker(dataSource, services, { concurrency: 2 });
  const port = Number(process.env.PORT ?? 3000);
  const server = app.listen(port, () => {
    console.log(`Express example on http://localhost:${port}, database ${target.label}`);
  });
  // Stop taking requests and jobs; running jobs get the worker's grace period; then the DataSource.
  const stop = (signal: NodeJS.Signals) => {
    server.close();
    void (worker?.stop(signal) ?? Promise.resolve())
      .then(() => dataSource.destroy())
      .then(() => target.close());
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
