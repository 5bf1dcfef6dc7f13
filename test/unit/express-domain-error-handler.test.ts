import express, { type ErrorRequestHandler } from 'express';
import request from 'supertest';
import { ForbiddenError, NotFoundError, ValidationError } from '../../src/errors';
import { domainErrorHandler, type DomainErrorHandlerOptions } from '../../src/express';

/** An app whose routes throw, with domainErrorHandler and then an error handler of its own. */
function appWith(options?: DomainErrorHandlerOptions) {
  const seenByNext: unknown[] = [];
  const app = express();
  app.use(express.json({ limit: '100b' }));
  app.post('/echo', (req, res) => void res.json(req.body));
  app.get('/forbidden', async () => {
    throw new ForbiddenError('only an admin may change a role', 'someone');
  });
  app.get('/invalid', () => {
    throw new ValidationError({ limit: ['limit must be an integer'] });
  });
  app.get('/bug', async () => {
    throw new TypeError("Cannot read properties of undefined (reading 'id')");
  });
  app.get('/half-sent', (_req, res) => {
    res.status(200).write('partial');
    throw new NotFoundError('project', 1);
  });
  app.use(domainErrorHandler(options));
  const own: ErrorRequestHandler = (error, _req, res, _next) => {
    seenByNext.push(error);
    if (res.headersSent) return void res.end();
    res.status(599).json({ error: 'the app decides' });
  };
  app.use(own);
  return { http: request(app), seenByNext };
}

describe('domainErrorHandler', () => {
  it('answers domain errors by the shared table: ForbiddenError 403, ValidationError 400 with fields', async () => {
    const { http, seenByNext } = appWith();
    const forbidden = await http.get('/forbidden');
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toEqual({
      error: 'forbidden',
      message: 'only an admin may change a role',
    });
    const invalid = await http.get('/invalid');
    expect(invalid.status).toBe(400);
    expect(invalid.body.fields).toEqual({ limit: ['limit must be an integer'] });
    expect(seenByNext).toEqual([]);
  });

  it('answers a body express.json() cannot parse with 400 invalid_json', async () => {
    const { http } = appWith();
    const res = await http.post('/echo').set('content-type', 'application/json').send('{"a": ');
    expect(res.status).toBe(400);
    expect(res.body).toEqual({
      error: 'invalid_json',
      message: 'the request body is not valid JSON',
    });
  });

  it("passes any other error to the app's next error handler by default", async () => {
    const { http, seenByNext } = appWith();
    const res = await http.get('/bug');
    expect(res.status).toBe(599);
    expect(seenByNext).toEqual([expect.any(TypeError)]);
  });

  it("with otherErrors 'respond' logs any other error and answers 500 without details", async () => {
    const logged: unknown[] = [];
    const { http, seenByNext } = appWith({
      otherErrors: 'respond',
      log: (error, req) => logged.push([(error as Error).name, req.path]),
    });
    const res = await http.get('/bug');
    expect(res.status).toBe(500);
    expect(res.body).toEqual({ error: 'internal', message: 'Internal server error' });
    expect(logged).toEqual([['TypeError', '/bug']]);
    expect(seenByNext).toEqual([]);
  });

  it("with otherErrors 'respond' still passes on errors that carry a client status (413)", async () => {
    const logged: unknown[] = [];
    const { http, seenByNext } = appWith({
      otherErrors: 'respond',
      log: (error) => logged.push(error),
    });
    const res = await http.post('/echo').send({ text: 'x'.repeat(200) });
    expect(res.status).toBe(599);
    expect(seenByNext).toEqual([expect.objectContaining({ status: 413 })]);
    expect(logged).toEqual([]);
  });

  it('passes every error on once the response has begun', async () => {
    const { http, seenByNext } = appWith();
    const res = await http.get('/half-sent');
    expect(res.status).toBe(200);
    expect(seenByNext).toEqual([expect.any(NotFoundError)]);
  });
});
