import 'reflect-metadata';
import { DataSource } from 'typeorm';
import { dataSourceOptions, openDatabaseTarget } from '@pixcrawler/data';
import { buildServices, createApp } from './app';

/**
 * Serves the example on PORT (default 3000), on DATABASE_URL's database or, when it is unset,
 * the package's embedded PostgreSQL (the same one `npm run cli -- migrate` uses). Migrations are
 * not run here: a release runs them before the app starts.
 */
async function main(): Promise<void> {
  const target = await openDatabaseTarget();
  const dataSource = new DataSource(dataSourceOptions({ url: target.url }));
  await dataSource.initialize();
  const app = createApp(
    buildServices(dataSource, {
      exportDir: process.env.EXPORT_DIR,
      imageDir: process.env.IMAGE_DIR,
    }),
  );
  const port = Number(process.env.PORT ?? 3000);
  const server = app.listen(port, () => {
    console.log(`Express example on http://localhost:${port}, database ${target.label}`);
  });
  const stop = () => {
    server.close();
    void dataSource.destroy().then(() => target.close());
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
