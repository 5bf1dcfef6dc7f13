import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { openDatabaseTarget } from '@pixcrawler/data';
import { AppModule } from './app.module';

/**
 * Serves the example on PORT (default 3000), on DATABASE_URL's database or, when it is unset,
 * the package's embedded PostgreSQL (the same one `npm run cli -- migrate` uses). Migrations are
 * not run here: a release runs them before the app starts.
 */
async function main(): Promise<void> {
  const target = await openDatabaseTarget();
  const app = await NestFactory.create(
    AppModule.register({
      databaseUrl: target.url,
      exportDir: process.env.EXPORT_DIR,
      imageDir: process.env.IMAGE_DIR,
      // The job worker runs beside the app unless RUN_WORKER=0 (then run `npx pixcrawler-db work`).
      worker: process.env.RUN_WORKER === '0' ? undefined : { concurrency: 2 },
    }),
  );
  const port = Number(process.env.PORT ?? 3000);
  await app.listen(port);
  console.log(`NestJS example on http://localhost:${port}, database ${target.label}`);
  // app.close() stops the worker (running jobs get its grace period), then ends the DataSource;
  // then the embedded server stops, if this process started it.
  const stop = () => void app.close().then(() => target.close());
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
