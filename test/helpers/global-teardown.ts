export default async function globalTeardown(): Promise<void> {
  await globalThis.__PIXCRAWLER_TEST_SERVER__?.stop();
}
