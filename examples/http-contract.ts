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

  describe('sign-up and roles', () => {
    it('refuses a role in the sign-up body with 400 and creates no profile', async () => {
      const id = randomUUID();
      const res = await http
        .post('/profiles')
        .send({ id, email: `${id}@example.com`, role: 'admin' });
      expect(res.status).toBe(400);
      expect(Object.keys(res.body.fields)).toEqual(['role']);
      const rows = await db.query('SELECT 1 FROM profiles WHERE id = $1', [id]);
      expect(rows).toEqual([]);
    });

    it('stores the email lower-case, so another letter case is the same address (409)', async () => {
      const id = randomUUID();
      const created = await http.post('/profiles').send({ id, email: `Mixed.${id}@Example.COM` });
      expect(created.status).toBe(201);
      expect(created.body).toMatchObject({ email: `mixed.${id}@example.com`, role: 'user' });
      const again = await http
        .post('/profiles')
        .send({ id: randomUUID(), email: `MIXED.${id}@example.com` });
      expect(again.status).toBe(409);
    });

    it('lets only an admin change a role: 403 for anyone else, 200 for an admin', async () => {
      const admin = await factory.profile({ role: 'admin' });
      const target = await factory.profile();
      const refused = await http
        .put(`/profiles/${target.id}/role`)
        .set('x-user-id', alice.id)
        .send({ role: 'admin' });
      // ForbiddenError is 403 in both apps (the shared domainErrorResponse), never 409.
      expect(refused.status).toBe(403);
      expect(refused.body).toEqual({
        error: 'forbidden',
        message: 'only an admin may change a role',
      });
      const [unchanged] = await db.query('SELECT role FROM profiles WHERE id = $1', [target.id]);
      expect(unchanged).toEqual({ role: 'user' });

      const done = await http
        .put(`/profiles/${target.id}/role`)
        .set('x-user-id', admin.id)
        .send({ role: 'moderator' });
      expect(done.status).toBe(200);
      expect(done.body).toMatchObject({ id: target.id, role: 'moderator' });

      const bad = await http
        .put(`/profiles/${target.id}/role`)
        .set('x-user-id', admin.id)
        .send({ role: 'root' });
      expect(bad.status).toBe(400);
      const missing = await http
        .put(`/profiles/${randomUUID()}/role`)
        .set('x-user-id', admin.id)
        .send({ role: 'user' });
      expect(missing.status).toBe(404);
    });
  });

  describe('hostile input', () => {
    const INT4_OVER = 2_147_483_648;
    const hostile = () => {
      const uuid = randomUUID();
      return [
        ['POST', '/profiles', { id: uuid, email: `${uuid}@x.io`, fullName: 'a\u0000b' }],
        ['POST', '/profiles', { id: uuid, email: `${uuid}@x.io`, fullName: 'x'.repeat(101) }],
        ['POST', '/profiles', { id: uuid, email: `a\u0000${uuid}@x.io` }],
        ['POST', '/projects', { name: 'a\u0000b' }],
        ['POST', '/projects', { name: 'ok', description: '\u0000' }],
        ['POST', '/projects', { name: 'x'.repeat(101) }],
        ['POST', '/crawl-jobs', { projectId: 1e300, name: 'n', keywords: ['k'] }],
        ['POST', '/crawl-jobs', { projectId: INT4_OVER, name: 'n', keywords: ['k'] }],
        ['POST', '/crawl-jobs', { projectId: 1, name: 'n', keywords: ['\u0000'] }],
        ['POST', '/crawl-jobs', { projectId: 1, name: 'n', keywords: ['k'], maxImages: INT4_OVER }],
        ['POST', '/exports', { crawlJobId: INT4_OVER, name: 'n', format: 'zip' }],
        ['POST', '/exports', { crawlJobId: 1, name: 'n\u0000', format: 'zip' }],
        [
          'POST',
          '/exports',
          { crawlJobId: 1, name: 'n', format: 'zip', options: { expiresInHours: 1e300 } },
        ],
        ['GET', '/projects/1e300', undefined],
        ['GET', `/projects/${INT4_OVER}`, undefined],
        ['GET', '/exports?limit=1e300', undefined],
        ['GET', `/exports?beforeId=${INT4_OVER}`, undefined],
        ['GET', '/exports/99999999999999999999', undefined],
        ['POST', `/exports/${INT4_OVER}/cancel`, undefined],
        ['GET', '/exports/-1/download', undefined],
      ] as const;
    };

    it('answers each with 400, 403, 404 or 409, never 500, and writes nothing', async () => {
      const tables = ['profiles', 'projects', 'crawl_jobs', 'export_jobs', 'activity_logs'];
      const counts = async () => Promise.all(tables.map(count));
      const before = await counts();
      const unexpected: string[] = [];
      for (const [method, url, body] of hostile()) {
        const req = method === 'POST' ? http.post(url) : http.get(url);
        const res = await req.set('x-user-id', alice.id).send(body as object | undefined);
        if (![400, 403, 404, 409].includes(res.status)) {
          unexpected.push(`${method} ${url} ${JSON.stringify(body)} -> ${res.status}`);
        }
      }
      expect(unexpected).toEqual([]);
      expect(await counts()).toEqual(before);
    });
  });

  return () => {
    if (!context) throw new Error('The example app did not start: see the beforeAll error above.');
    return context;
  };
}
