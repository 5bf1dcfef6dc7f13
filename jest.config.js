/** @type {import('jest').Config} */
const tsJest = ['ts-jest', {}];

module.exports = {
  // Integration tests migrate real databases; some build indexes on thousands of rows.
  testTimeout: 120000,
  // One PostgreSQL server for the whole run (embedded unless DATABASE_URL is set); every
  // integration test file creates its own database on it, so files run in parallel.
  globalSetup: '<rootDir>/test/helpers/global-setup.ts',
  globalTeardown: '<rootDir>/test/helpers/global-teardown.ts',
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
    },
    {
      // The example apps import '@pixcrawler/data' by name; tsconfig.json's `paths` says the same.
      displayName: 'examples',
      testEnvironment: 'node',
      transform: { '^.+\\.ts$': tsJest },
      testMatch: ['<rootDir>/examples/**/*.e2e.test.ts'],
      // The quick-start apps run their own jest on the installed package, in
      // test/integration/quickstart-apps.test.ts; not here, on the sources.
      testPathIgnorePatterns: ['/node_modules/', '<rootDir>/examples/quickstart/'],
      moduleNameMapper: {
        '^@pixcrawler/data$': '<rootDir>/src/index.ts',
        '^@pixcrawler/data/testing$': '<rootDir>/src/testing/index.ts',
        '^@pixcrawler/data/nestjs$': '<rootDir>/src/nestjs/index.ts',
        '^@pixcrawler/data/express$': '<rootDir>/src/express/index.ts',
      },
    },
  ],
};
