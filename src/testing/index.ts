/**
 * Test support for applications that use this package: `@pixcrawler/data/testing`.
 *
 *   // jest globalSetup
 *   const server = await startTestServer();       // DATABASE_URL's server, or an embedded one
 *   process.env.PIXCRAWLER_TEST_SERVER_URL = server.url;
 *
 *   // a test file
 *   const db = await createTestDatabase({ label: 'projects' });
 *   await db.migrate();
 *   const dataSource = await db.connect();
 *   const factory = new TestFactory(dataSource.manager);
 *   const project = await factory.project({ name: 'Birds' });
 *   …
 *   await db.drop();
 *
 * One builder per database found in the wild, to rehearse an upgrade on (each also behind
 * `pixcrawler-db seed-legacy --flavour`): buildEmptyDatabase, buildLegacyDatabase (pre-001),
 * buildOrmDatabase (the web app's ORM made it), buildAlembicDatabase (PixCrawler's Alembic 001).
 */
export { startTestServer, type TestServer } from './test-server';
export { createTestDatabase, type TestDatabase, type TestDatabaseOptions } from './test-database';
export { TestFactory } from './factories';
export {
  buildOrmDatabase,
  type OrmBuildOptions,
  type OrmBuildResult,
} from './orm-database-builder';
export {
  buildAlembicDatabase,
  type AlembicBuildOptions,
  type AlembicBuildResult,
  type AlembicSizes,
} from './alembic-database-builder';
export {
  buildEmptyDatabase,
  buildLegacyDatabase,
  LegacyBuildRefusedError,
  type LegacyBuildOptions,
  type LegacyBuildResult,
} from './legacy-builder';
