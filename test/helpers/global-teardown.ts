import stopTestServer from '../../src/testing/jest-global-teardown';
import { removeCliBuild } from './cli-build';

export default async function globalTeardown(): Promise<void> {
  await stopTestServer();
  removeCliBuild();
}
