import 'reflect-metadata';
import express, { type Request } from 'express';
import { DataSource } from 'typeorm';
import {
  CrawlJobService,
  ExportJobService,
  JobWorker,
  LocalDirectoryStorage,
  ProfileService,
  ProjectService,
  ValidationError,
} from '@pixcrawler/data';
import { domainErrorHandler } from '@pixcrawler/data/express';
import { appDataSourceOptions } from './database';
import { Note } from './note.entity';

/** The caller: a real app takes it from its authentication, this one trusts a header. */
const userId = (req: Request) => req.header('x-user-id') ?? '';
const id = (req: Request) => Number(req.params.id);

async function main(): Promise<void> {
  const dataSource = new DataSource(appDataSourceOptions(process.env.DATABASE_URL));
  await dataSource.initialize();
  const profiles = new ProfileService(dataSource);
  const projects = new ProjectService(dataSource);
  const crawlJobs = new CrawlJobService(dataSource);
  const exports = new ExportJobService(dataSource, {
    outputDir: process.env.EXPORT_DIR ?? 'exports',
    storage: new LocalDirectoryStorage(process.env.IMAGE_DIR ?? 'images'),
  });
  // Runs the exports requested below, woken by the request's NOTIFY.
  const worker = new JobWorker(dataSource, [exports.jobs]);
  await worker.start();

  const app = express();
  app.use(express.json());
  // Express 5 hands a rejected handler's error to the error handlers.
  app.post('/profiles', async (req, res) => {
    res.status(201).json(await profiles.create(req.body));
  });
  app.post('/projects', async (req, res) => {
    res.status(201).json(await projects.create(userId(req), req.body));
  });
  app.post('/projects/:id/notes', async (req, res) => {
    const project = await projects.get(userId(req), id(req)); // NotFoundError unless theirs
    const body: unknown = req.body?.body;
    if (typeof body !== 'string') throw new ValidationError({ body: ['body must be a string'] });
    const note = dataSource.getRepository(Note).create({ projectId: project.id, body });
    res.status(201).json(await dataSource.getRepository(Note).save(note));
  });
  app.post('/crawl-jobs', async (req, res) => {
    res.status(201).json(await crawlJobs.create(userId(req), req.body));
  });
  app.post('/crawl-jobs/:id/start', async (req, res) => {
    res.json(await crawlJobs.start(userId(req), id(req)));
  });
  // What the crawler reports: images whose files it stored under IMAGE_DIR.
  app.post('/crawl-jobs/:id/images', async (req, res) => {
    const job = await crawlJobs.get(userId(req), id(req));
    res.status(201).json(await crawlJobs.ingestImages(job.id, req.body));
  });
  app.post('/exports', async (req, res) => {
    res.status(201).json(await exports.request(userId(req), req.body));
  });
  app.get('/exports/:id', async (req, res) => {
    res.json(await exports.get(userId(req), id(req)));
  });
  app.get('/exports/:id/file', async (req, res) => {
    const { location } = await exports.download(userId(req), id(req));
    res.download(location);
  });
  app.use(domainErrorHandler());

  const port = Number(process.env.PORT ?? 3000);
  const server = app.listen(port, () => console.log(`listening on http://localhost:${port}`));
  // No new requests or jobs; running jobs get the worker's grace period; then the DataSource.
  const stop = async (signal: NodeJS.Signals) => {
    server.close();
    await worker.stop(signal);
    await dataSource.destroy();
  };
  process.once('SIGINT', (signal) => void stop(signal));
  process.once('SIGTERM', (signal) => void stop(signal));
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
