import { httpContract } from '../http-contract';
import { workerContract, TEST_WORKER } from '../worker-contract';
import { buildServices, createApp } from './app';
import { startWorker } from './worker';

describe('Express example', () => {
  const app = httpContract('express_example', async (db) => {
    const dataSource = await db.connect(); // closed by db.drop()
    return {
      server: createApp(buildServices(dataSource)),
      dataSource,
      close: async () => undefined,
      extra: undefined,
    };
  });

  describe('Express specifics', () => {
    it('POST /projects with a body that is not JSON answers 400', async () => {
      const { http, alice } = app();
      const res = await http
        .post('/projects')
        .set('x-user-id', alice.id)
        .set('content-type', 'application/json')
        .send('{"name": ');
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_json');
    });
  });

  workerContract('express_worker', async (db) => {
    const dataSource = await db.connect(); // closed by db.drop()
    const services = buildServices(dataSource);
    const worker = await startWorker(dataSource, services, {
      ...TEST_WORKER,
      log: () => undefined,
    });
    return {
      server: createApp(services),
      dataSource,
      close: () => worker.stop('test over'),
      extra: undefined,
    };
  });
});
