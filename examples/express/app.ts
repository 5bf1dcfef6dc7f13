import express, { type Request } from 'express';
import os from 'node:os';
import path from 'node:path';
import type { DataSource } from 'typeorm';
import {
  CrawlJobService,
  ExportJobService,
  LocalDirectoryStorage,
  ProfileService,
  ProjectService,
  ValidationJobService,
} from '@pixcrawler/data';
import { domainErrorHandler } from '@pixcrawler/data/express';

export interface ExampleConfig {
  /** Where export files are written; default a folder under the system's temp directory. */
  exportDir?: string;
  /** Where image files live (exports read them); default the current directory's images/. */
  imageDir?: string;
}

/** The package's services, built from the application's DataSource: plain classes. */
export function buildServices(dataSource: DataSource, config: ExampleConfig = {}) {
  return {
    profiles: new ProfileService(dataSource),
    projects: new ProjectService(dataSource),
    crawlJobs: new CrawlJobService(dataSource),
    validations: new ValidationJobService(dataSource),
    exports: new ExportJobService(dataSource, {
      outputDir: config.exportDir ?? path.join(os.tmpdir(), 'pixcrawler-exports'),
      storage: new LocalDirectoryStorage(config.imageDir ?? 'images'),
    }),
  };
}

export type Services = ReturnType<typeof buildServices>;

/**
 * The caller's user id. A real app takes it from its authentication (a verified token); the
 * example trusts a header. The services reject a missing or malformed id as a ValidationError.
 */
const userId = (req: Request) => req.header('x-user-id') ?? '';

/** Path ids as numbers; the services answer NotFoundError for anything that cannot be an id. */
const idParam = (req: Request) => Number(req.params.id);

/**
 * Query strings are text; the services' DTOs validate numbers. Present fields are converted and
 * a non-number stays NaN, which the DTO reports as "must be an integer".
 */
function numbers(query: Request['query'], names: string[]): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(query)) {
    result[name] = names.includes(name) && typeof value === 'string' ? Number(value) : value;
  }
  return result;
}

export function createApp(services: Services): express.Express {
  const app = express();
  app.use(express.json());

  // Express 5 passes a rejected promise from a handler to the error handler.
  app.post('/profiles', async (req, res) => {
    res.status(201).json(await services.profiles.create(req.body));
  });

  // The one way to change a role: an admin (the x-user-id caller) sets another profile's role.
  app.put('/profiles/:id/role', async (req, res) => {
    const body: unknown = req.body;
    const role =
      typeof body === 'object' && body !== null ? (body as { role?: unknown }).role : undefined;
    res.json(await services.profiles.setRole(userId(req), req.params.id, role));
  });

  app.post('/projects', async (req, res) => {
    res.status(201).json(await services.projects.create(userId(req), req.body));
  });

  app.get('/projects/:id', async (req, res) => {
    res.json(await services.projects.get(userId(req), idParam(req)));
  });

  app.post('/crawl-jobs', async (req, res) => {
    res.status(201).json(await services.crawlJobs.create(userId(req), req.body));
  });

  app.post('/exports', async (req, res) => {
    res.status(201).json(await services.exports.request(userId(req), req.body));
  });

  app.get('/exports', async (req, res) => {
    const page = numbers(req.query, ['limit', 'beforeId']);
    res.json(await services.exports.listMine(userId(req), page));
  });

  app.get('/exports/:id', async (req, res) => {
    res.json(await services.exports.get(userId(req), idParam(req)));
  });

  app.post('/exports/:id/cancel', async (req, res) => {
    res.json(await services.exports.cancel(userId(req), idParam(req)));
  });

  app.get('/exports/:id/download', async (req, res) => {
    const { downloadUrl, fileSize, expiresAt } = await services.exports.download(
      userId(req),
      idParam(req),
    );
    res.json({ downloadUrl, fileSize, expiresAt });
  });

  // Domain errors by the package's table, a body that is not JSON as 400; anything else is a bug
  // or an outage, logged and answered 500 without details.
  app.use(domainErrorHandler({ otherErrors: 'respond' }));
  return app;
}
