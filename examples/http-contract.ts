import { randomUUID } from 'node:crypto';
import request from 'supertest';
import type { DataSource } from 'typeorm';
import type { Profile } from '@pixcrawler/data';
import { createTestDatabase, TestFactory, type TestDatabase } from '@pixcrawler/data/testing';

/** What an example app gives the shared suite. */
export interface StartedApp<Extra> {
  /** What supertest drives: an Express app or a Node HTTP server. */
  server: Parameters<typeof request>[0];
  /** The DataSource the app runs on (the factories write through it). */
  dataSource: DataSource;
  close(): Promise<void>;
  /** Anything else the app's own tests need (the Nest application, say). */
  extra: Extra;
}

export interface ContractContext<Extra> {
  db: TestDatabase;
  http: ReturnType<typeof request>;
  factory: TestFactory;
  alice: Profile;
  bob: Profile;
  extra: Extra;
}

/**
 * The HTTP contract both example apps keep, as one suite: the same requests get the same answers
 * whichever framework serves them, the status-code table for the domain errors included. It runs
 * against a migrated throwaway database (jest's global set-up starts the server: DATABASE_URL's,
 * or an embedded one); profiles and parent rows come from the testing kit's factories on the
 * app's own DataSource, and everything under test goes through HTTP.
 *
 * Call it inside the app's `describe`; it returns the context for the app's own extra tests.
 */
export function httpContract<Extra>(
  label: string,
  start: (db: TestDatabase) => Promise<StartedApp<Extra>>,
): () => ContractContext<Extra> {
  let context: ContractContext<Extra> | undefined;
  let app: StartedApp<Extra> | undefined;
  let db: TestDatabase;
  let http: ReturnType<typeof request>;
  let factory: TestFactory;
  let alice: Profile;
  let bob: Profile;

  const count = async (table: string) =>
    Number((await db.query<{ n: string }>(`SELECT count(*) AS n FROM ${table}`))[0].n);

  /** A crawl job in a project of the given user, to export. */
  const crawlJobOf = async (user: Profile) =>
    factory.crawlJob({ projectId: (await factory.project({ userId: user.id })).id });

  beforeAll(async () => {
    db = await createTestDatabase({ label });
    await db.migrate();
    app = await start(db);
    http = request(app.server);
    factory = new TestFactory(app.dataSource.manager);
    alice = await factory.profile();
    bob = await factory.profile();
    context = { db, http, factory, alice, bob, extra: app.extra };
  });

  afterAll(async () => {
    await app?.close();
    await db?.drop();
  });

  describe('POST /profiles', () => {
    it('answers 201 with the new profile', async () => {
      const id = randomUUID();
      const res = await http
        .post('/profiles')
        .send({ id, email: `${id}@example.com`, fullName: 'Carol' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ id, email: `${id}@example.com`, fullName: 'Carol' });
    });

    it('with a taken email answers 409 naming the field and writes nothing', async () => {
      const before = await count('profiles');
      const res = await http.post('/profiles').send({ id: randomUUID(), email: alice.email });
      expect(res.status).toBe(409);
      expect(res.body).toMatchObject({ error: 'conflict', field: 'email' });
      expect(await count('profiles')).toBe(before);
    });
  });

  describe('POST /projects', () => {
    it('creates a project owned by the x-user-id user and answers 201', async () => {
      const res = await http
        .post('/projects')
        .set('x-user-id', alice.id)
        .send({ name: 'Birds', description: 'garden birds' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ name: 'Birds', userId: alice.id, status: 'active' });
      const [row] = await db.query('SELECT user_id, name FROM projects WHERE id = $1', [
        res.body.id,
      ]);
      expect(row).toEqual({ user_id: alice.id, name: 'Birds' });
    });

    it('with an empty name answers 400 naming the field and writes nothing', async () => {
      const before = await count('projects');
      const res = await http.post('/projects').set('x-user-id', alice.id).send({ name: '' });
      expect(res.status).toBe(400);
      expect(res.body).toEqual({
        error: 'invalid_input',
        message: expect.any(String),
        fields: { name: ['name must not be empty'] },
      });
      expect(await count('projects')).toBe(before);
    });

    it('with an unknown field and a non-string description answers 400 with a message per field', async () => {
      const res = await http
        .post('/projects')
        .set('x-user-id', alice.id)
        .send({ name: 'Cats', description: 42, colour: 'red' });
      expect(res.status).toBe(400);
      expect(Object.keys(res.body.fields).sort()).toEqual(['colour', 'description']);
      expect(res.body.fields.description).toEqual(['description must be a string']);
    });

    it('without an x-user-id header answers 400 naming userId', async () => {
      const res = await http.post('/projects').send({ name: 'Nobody' });
      expect(res.status).toBe(400);
      expect(res.body.fields).toEqual({ userId: ['userId must be a UUID'] });
    });
  });

  describe('GET /projects/:id', () => {
    it("answers 404 for another user's project exactly as for a missing one", async () => {
      const bobs = await factory.project({ userId: bob.id });
      const foreign = await http.get(`/projects/${bobs.id}`).set('x-user-id', alice.id);
      const missing = await http.get('/projects/2147483647').set('x-user-id', alice.id);
      expect(foreign.status).toBe(404);
      expect(missing.status).toBe(404);
      expect(foreign.body).toEqual({ error: 'not_found', message: `project ${bobs.id} not found` });
      expect(missing.body).toEqual({ error: 'not_found', message: 'project 2147483647 not found' });
    });

    it('answers 404 for an id that is not a number', async () => {
      const res = await http.get('/projects/abc').set('x-user-id', alice.id);
      expect(res.status).toBe(404);
      expect(res.body.error).toBe('not_found');
    });
  });

  describe('POST /crawl-jobs', () => {
    it('in an archived project answers 409 (illegal transition) and writes nothing', async () => {
      const archived = await factory.project({ userId: alice.id, status: 'archived' });
      const before = await count('crawl_jobs');
      const res = await http
        .post('/crawl-jobs')
        .set('x-user-id', alice.id)
        .send({ projectId: archived.id, name: 'Late', keywords: ['owls'] });
      expect(res.status).toBe(409);
      expect(res.body.error).toBe('illegal_transition');
      expect(await count('crawl_jobs')).toBe(before);
    });
  });

  describe('POST /exports', () => {
    it("requests a pending export of the user's crawl job and answers 201", async () => {
      const crawlJob = await crawlJobOf(alice);
      const res = await http
        .post('/exports')
        .set('x-user-id', alice.id)
        .send({ crawlJobId: crawlJob.id, name: 'Birds CSV', format: 'csv' });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({
        crawlJobId: crawlJob.id,
        userId: alice.id,
        format: 'csv',
        status: 'pending',
      });
    });

    it('with a bad format and a bad nested option answers 400 with a message per field and writes nothing', async () => {
      const crawlJob = await crawlJobOf(alice);
      const before = await count('export_jobs');
      const res = await http
        .post('/exports')
        .set('x-user-id', alice.id)
        .send({
          crawlJobId: crawlJob.id,
          name: 'Bad',
          format: 'rar',
          options: { expiresInHours: 0 },
        });
      expect(res.status).toBe(400);
      expect(res.body.fields).toEqual({
        format: ['format must be one of zip, tar, csv, jsonl'],
        'options.expiresInHours': ['expiresInHours must be at least 1'],
      });
      expect(await count('export_jobs')).toBe(before);
    });

    it("for another user's crawl job answers 404 like a missing one and writes nothing", async () => {
      const bobsJob = await crawlJobOf(bob);
      const before = await count('export_jobs');
      const res = await http
        .post('/exports')
        .set('x-user-id', alice.id)
        .send({ crawlJobId: bobsJob.id, name: 'Stolen', format: 'zip' });
      expect(res.status).toBe(404);
      expect(res.body).toEqual({
        error: 'not_found',
        message: `crawl job ${bobsJob.id} not found`,
      });
      expect(await count('export_jobs')).toBe(before);
    });
  });

  describe('GET /exports', () => {
    it("lists only the caller's exports, newest first, a page at a time with beforeId", async () => {
      const dave = await factory.profile();
      const crawlJob = await crawlJobOf(dave);
      const ids: number[] = [];
      for (const name of ['first', 'second', 'third']) {
        const res = await http
          .post('/exports')
          .set('x-user-id', dave.id)
          .send({ crawlJobId: crawlJob.id, name, format: 'jsonl' });
        ids.push(res.body.id);
      }
      await factory.exportJob({ crawlJobId: (await crawlJobOf(bob)).id });

      const page1 = await http.get('/exports?limit=2').set('x-user-id', dave.id);
      expect(page1.status).toBe(200);
      expect(page1.body.map((e: { id: number }) => e.id)).toEqual([ids[2], ids[1]]);
      const page2 = await http.get(`/exports?limit=2&beforeId=${ids[1]}`).set('x-user-id', dave.id);
      expect(page2.body.map((e: { id: number }) => e.id)).toEqual([ids[0]]);
    });

    it('with a limit that is not a number answers 400 naming limit', async () => {
      const res = await http.get('/exports?limit=abc').set('x-user-id', alice.id);
      expect(res.status).toBe(400);
      expect(Object.keys(res.body.fields)).toEqual(['limit']);
      expect(res.body.fields.limit).toContain('limit must be an integer');
    });
  });

  describe('GET /exports/:id', () => {
    it("answers 404 for another user's export like a missing one", async () => {
      const bobsExport = await factory.exportJob({ crawlJobId: (await crawlJobOf(bob)).id });
      const res = await http.get(`/exports/${bobsExport.id}`).set('x-user-id', alice.id);
      expect(res.status).toBe(404);
      expect(res.body).toEqual({
        error: 'not_found',
        message: `export job ${bobsExport.id} not found`,
      });
    });
  });

  describe('export lifecycle', () => {
    it('cancelling an export twice answers 409 the second time and leaves it cancelled', async () => {
      const job = await factory.exportJob({ crawlJobId: (await crawlJobOf(alice)).id });
      const first = await http.post(`/exports/${job.id}/cancel`).set('x-user-id', alice.id);
      expect(first.status).toBe(200);
      expect(first.body.status).toBe('cancelled');
      const second = await http.post(`/exports/${job.id}/cancel`).set('x-user-id', alice.id);
      expect(second.status).toBe(409);
      expect(second.body).toEqual({
        error: 'illegal_transition',
        message: `cannot cancel export job ${job.id}: it is cancelled`,
      });
      const [row] = await db.query('SELECT status FROM export_jobs WHERE id = $1', [job.id]);
      expect(row).toEqual({ status: 'cancelled' });
    });

    it('downloading an export that is not completed answers 409 naming status', async () => {
      const job = await factory.exportJob({ crawlJobId: (await crawlJobOf(alice)).id });
      const res = await http.get(`/exports/${job.id}/download`).set('x-user-id', alice.id);
      expect(res.status).toBe(409);
      expect(res.body).toEqual({
        error: 'conflict',
        message: `export job ${job.id} is pending, not completed`,
        field: 'status',
      });
    });
  });

  return () => {
    if (!context) throw new Error('The example app did not start: see the beforeAll error above.');
    return context;
  };
}
