import { execFile } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

const ROOT = path.resolve(__dirname, '../..');
/** How long a test file waits for another one's `npm pack`. */
const WAIT_MS = 300_000;

/**
 * The package as npm publishes it: `npm pack` (its prepack builds dist/), once per jest run, for
 * every test file that installs it. Packing rebuilds dist/ in place, so two files packing at once
 * would break each other's tarball: the first to ask packs, the others wait for its result.
 * Everything lives in the run's folder (PIXCRAWLER_TEST_RUN_DIR, see global-setup.ts).
 */
export async function packedTarball(): Promise<string> {
  const runDir = process.env.PIXCRAWLER_TEST_RUN_DIR;
  if (!runDir) throw new Error('PIXCRAWLER_TEST_RUN_DIR is unset: run through jest.config.js');
  const result = path.join(runDir, 'packed.json');
  let lock: number | undefined;
  try {
    lock = openSync(path.join(runDir, 'packing.lock'), 'wx');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  if (lock !== undefined) {
    closeSync(lock);
    let packed: { tarball?: string; error?: string };
    try {
      const { stdout } = await promisify(execFile)(
        'npm',
        ['pack', '--silent', '--pack-destination', runDir],
        { cwd: ROOT, encoding: 'utf8' },
      );
      packed = { tarball: path.join(runDir, stdout.trim().split('\n').pop()!) };
    } catch (error) {
      packed = { error: String((error as { stderr?: string }).stderr || error) };
    }
    // Written whole, then renamed: a waiting file never reads half of it.
    writeFileSync(`${result}.tmp`, JSON.stringify(packed));
    renameSync(`${result}.tmp`, result);
  }
  for (const end = Date.now() + WAIT_MS; !existsSync(result);) {
    if (Date.now() > end) throw new Error(`npm pack did not finish within ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const packed = JSON.parse(readFileSync(result, 'utf8')) as { tarball?: string; error?: string };
  if (!packed.tarball) throw new Error(`npm pack failed: ${packed.error}`);
  return packed.tarball;
}
