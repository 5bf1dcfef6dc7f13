import {
  createTestDatabase as createDatabase,
  type TestDatabase,
} from '../../src/testing/test-database';

export type { TestDatabase };

/** A fresh database on the jest run's server (see global-setup.ts) for one test file. */
export function createTestDatabase(label = 'test'): Promise<TestDatabase> {
  return createDatabase({ label });
}
