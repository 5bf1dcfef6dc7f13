import { execFile, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { tarEntries } from '../helpers/archives';
import { packedTarball } from '../helpers/packed-tarball';
import { createTestDatabase, type TestDatabase } from '../helpers/test-database';
import { freePort } from '../../src/testing/test-server';

/**
 * The quick-start apps (examples/quickstart) as a new user has them: each copied into a fresh
 * folder, installed from the packed tarball and the npm registry with the newest typeorm 1.x,
 * then with typeorm 1.0.0 swapped in; built, migrated by TypeORM's CLI and by pixcrawler-db -d,
 * booted, driven over HTTP through to a downloaded export, stopped, and their own jest suites
 * run on the testing kit. Each step runs for both apps at once: they share nothing but the
 * PostgreSQL server, and two cores finish them sooner side by side.
 */
const APPS = ['nestjs', 'express'] as const;
type App = (typeof APPS)[number];

const QUICKSTART = path.resolve(__dirname, '../../examples/quickstart');
/** The registry's packages as the npm cache already has them; nothing else fetched. */
const NPM_FLAGS = ['--prefer-offline', '--no-audit', '--no-fund'];
/** The image files the flow ingests and expects back in the archive. */
const IMAGES = { 'owl.jpg': randomBytes(3000), 'heron.jpg': randomBytes(1200) };

const dirs = {} as Record<App, string>;

// Installs, builds and jest runs of two apps on two cores: minutes, not seconds.
jest.setTimeout(300_000);

/**
 * The environment of every command: the machine's, without this jest run's own settings (its
 * worker id, the server of its global set-up); each command gets what it needs explicitly.
 */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const inherited = Object.entries(process.env).filter(
    ([name]) => !/^(JEST_|PIXCRAWLER_TEST_)/.test(name) && name !== 'DATABASE_URL',
  );
  return { ...Object.fromEntries(inherited), ...extra };
}

/** Runs a command in an app's folder; rejects with its output when it exits non-zero. */
async function run(
  app: App,
  command: string,
  args: string[],
  extra: Record<string, string> = {},
): Promise<string> {
  // The app's own binaries, as npx runs them, without npx's start-up.
  const bin = path.join(dirs[app], 'node_modules', '.bin', command);
  const file = ['npm', 'node'].includes(command) ? command : bin;
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { cwd: dirs[app], env: env(extra), encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`;
        if (error) {
          reject(new Error(`${app}: ${command} ${args.join(' ')} failed:\n${output.slice(-4000)}`));
        } else {
          resolve(output);
        }
      },
    );
  });
}

/** A step for every app at once; an app's failure names the app. */
async function eachApp<T>(step: (app: App) => Promise<T>): Promise<Record<App, T>> {
  const results = await Promise.allSettled(APPS.map(step));
  const failures = results.flatMap((result, i) =>
    result.status === 'rejected' ? [`${APPS[i]}: ${String(result.reason)}`] : [],
  );
  if (failures.length > 0) throw new Error(failures.join('\n\n'));
  return Object.fromEntries(
    results.map((result, i) => [APPS[i], (result as PromiseFulfilledResult<T>).value]),
  ) as Record<App, T>;
}

/** A fresh folder with the app's files, its package.json naming the tarball; then npm install. */
async function install(app: App, tarball: string): Promise<void> {
  dirs[app] = mkdtempSync(path.join(tmpdir(), `pixcrawler-quickstart-${app}-`));
  cpSync(path.join(QUICKSTART, app), dirs[app], {
    recursive: true,
    filter: (source) => !/[/\\](node_modules|dist)$/.test(source),
  });
  const manifestPath = path.join(dirs[app], 'package.json');
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
  manifest.dependencies['@pixcrawler/data'] = `file:${tarball}`;
  writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
  for (const [name, bytes] of Object.entries(IMAGES)) {
    mkdirSync(path.join(dirs[app], 'images', 'crawl'), { recursive: true });
    writeFileSync(path.join(dirs[app], 'images', 'crawl', name), bytes);
  }
  await run(app, 'npm', ['install', ...NPM_FLAGS]);
}

/** The one typeorm the app has: the path of every copy, and its version. */
async function installedTypeorm(app: App): Promise<{ copies: string[]; version: string }> {
  const parseable = await run(app, 'npm', ['ls', 'typeorm', '--all', '--parseable']);
  const copies = [...new Set(parseable.trim().split('\n'))].filter((line) => line !== dirs[app]);
  const { version } = JSON.parse(
    readFileSync(path.join(dirs[app], 'node_modules', 'typeorm', 'package.json'), 'utf8'),
  ) as { version: string };
  return { copies: copies.map((copy) => path.relative(dirs[app], copy)), version };
}

/** What `typeorm@^1` resolves to on the registry now: the version a fresh install gets. */
async function newestTypeorm(): Promise<string> {
  const output = await run(APPS[0], 'npm', [
    'view',
    'typeorm@^1',
    'version',
    '--json',
    '--prefer-offline',
  ]);
  // Releases only (a range leaves prereleases out): x.y.z, compared part by part.
  const byVersion = (a: string, b: string) => {
    const [x, y] = [a, b].map((version) => version.split('.').map(Number));
    return x[0] - y[0] || x[1] - y[1] || x[2] - y[2];
  };
  return ([] as string[]).concat(JSON.parse(output)).sort(byVersion).pop()!;
}

/** Starts `node dist/main.js`; resolves once it answers HTTP. */
async function boot(app: App, environment: Record<string, string>) {
  const port = await freePort();
  const child = spawn('node', ['dist/main.js'], {
    cwd: dirs[app],
    env: env({ ...environment, PORT: String(port) }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => (output += chunk));
  child.stderr.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  const base = `http://127.0.0.1:${port}`;
  for (const end = Date.now() + 30_000; ;) {
    if (child.exitCode !== null) throw new Error(`${app} exited while starting:\n${output}`);
    if (Date.now() > end) throw new Error(`${app} did not answer in 30 s:\n${output}`);
    const answered = await fetch(`${base}/exports/1`).then(
      () => true,
      () => false,
    );
    if (answered) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return {
    base,
    output: () => output,
    /** SIGTERM; how the process ended (SIGKILL after 15 s) and how long that took. */
    async stop() {
      const start = Date.now();
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      const ended = await exited;
      clearTimeout(timer);
      return { ...ended, milliseconds: Date.now() - start };
    },
  };
}

/** JSON over HTTP as the user `user` (the x-user-id header), answering status and body. */
async function call(base: string, user: string, method: string, url: string, body?: unknown) {
  const response = await fetch(`${base}${url}`, {
    method,
    headers: { 'content-type': 'application/json', 'x-user-id': user },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

/** The body of an answer that has the expected status; else an error saying what came. */
async function expectStatus(answer: ReturnType<typeof call>, status: number) {
  const { status: got, body } = await answer;
  if (got !== status) throw new Error(`expected ${status}, got ${got}: ${JSON.stringify(body)}`);
  return body;
}

/**
 * A user signs up, makes a project with a note (the app's own table), a crawl job whose crawler
 * reports two images stored under IMAGE_DIR, and requests a tar export; the worker beside the app
 * runs it; the user downloads the file. Returns the archive's entries.
 */
async function exportOverHttp(base: string): Promise<Array<[string, Buffer]>> {
  const user = randomUUID();
  await expectStatus(
    call(base, user, 'POST', '/profiles', { id: user, email: `${user}@example.com` }),
    201,
  );
  const project = await expectStatus(call(base, user, 'POST', '/projects', { name: 'Birds' }), 201);
  const note = await expectStatus(
    call(base, user, 'POST', `/projects/${project.id}/notes`, { body: 'herons at dawn' }),
    201,
  );
  expect(note).toMatchObject({ projectId: project.id, body: 'herons at dawn' });
  // Another user's project answers 404 through the package's error mapping.
  await expectStatus(
    call(base, randomUUID(), 'POST', `/projects/${project.id}/notes`, { body: 'x' }),
    404,
  );
  const crawlJob = await expectStatus(
    call(base, user, 'POST', '/crawl-jobs', {
      projectId: project.id,
      name: 'Birds',
      keywords: ['owl'],
    }),
    201,
  );
  await expectStatus(call(base, user, 'POST', `/crawl-jobs/${crawlJob.id}/start`), 200);
  const images = Object.keys(IMAGES).map((filename) => ({
    originalUrl: `https://images.example.com/${filename}`,
    filename,
    storageUrl: `crawl/${filename}`,
  }));
  const ingested = await expectStatus(
    call(base, user, 'POST', `/crawl-jobs/${crawlJob.id}/images`, images),
    201,
  );
  expect(ingested).toMatchObject({ inserted: 2, trimmed: 0 });
  const requested = await expectStatus(
    call(base, user, 'POST', '/exports', { crawlJobId: crawlJob.id, name: 'Birds', format: 'tar' }),
    201,
  );
  let job = requested;
  const unfinished = (status: unknown) => status === 'pending' || status === 'running';
  for (const end = Date.now() + 30_000; unfinished(job.status) && Date.now() < end;) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    job = await expectStatus(call(base, user, 'GET', `/exports/${requested.id}`), 200);
  }
  expect(job).toMatchObject({ status: 'completed', exportedImages: 2, errorMessage: null });
  const download = await fetch(`${base}/exports/${requested.id}/file`, {
    headers: { 'x-user-id': user },
  });
  expect(download.status).toBe(200);
  expect(download.headers.get('content-disposition')).toMatch(
    /attachment; filename="?export-\d+\.tar"?/,
  );
  return tarEntries(Buffer.from(await download.arrayBuffer()));
}

beforeAll(async () => {
  const tarball = await packedTarball();
  await eachApp((app) => install(app, tarball));
}, 600_000);

afterAll(() => {
  for (const dir of Object.values(dirs)) rmSync(dir, { recursive: true, force: true });
});

describe.each([
  ['the newest typeorm 1.x', undefined],
  ['typeorm 1.0.0', '1.0.0'],
])('the quick-start apps with %s', (_label, typeormVersion) => {
  const databases = {} as Record<App, TestDatabase>;

  beforeAll(async () => {
    // The swap an app makes to pin an older typeorm: one package, not a reinstall.
    if (typeormVersion) {
      await eachApp((app) =>
        run(app, 'npm', ['install', `typeorm@${typeormVersion}`, ...NPM_FLAGS]),
      );
    }
    await eachApp(async (app) => (databases[app] = await createTestDatabase(`quickstart_${app}`)));
  }, 300_000);

  afterAll(async () => {
    await Promise.all(Object.values(databases).map((db) => db.drop()));
  });

  it('have one valid typeorm of that version, shared by the package and the app', async () => {
    const newest = typeormVersion ?? (await newestTypeorm());
    const installed = await eachApp(installedTypeorm);
    for (const app of APPS) {
      expect(installed[app]).toEqual({
        copies: [path.join('node_modules', 'typeorm')],
        version: newest,
      });
    }
  });

  it('build with tsc', async () => {
    await eachApp((app) => run(app, 'tsc', []));
  });

  it("migrate a fresh database with TypeORM's CLI and their compiled DataSource", async () => {
    const outputs = await eachApp((app) =>
      run(app, 'typeorm', ['migration:run', '-d', 'dist/data-source.js'], {
        DATABASE_URL: databases[app].url,
      }),
    );
    for (const app of APPS) {
      expect(outputs[app]).toMatch(/Migration PendingJobIndexes\d+ has been executed successfully/);
      expect(outputs[app]).toMatch(/Migration AddNotes\d+ has been executed successfully/);
    }
  });

  it('pass pixcrawler-db -d status --check and verify --strict, then revert and migrate --verify with it', async () => {
    await eachApp(async (app) => {
      const pixcrawler = (...args: string[]) =>
        run(app, 'pixcrawler-db', ['-d', 'dist/data-source.js', ...args], {
          DATABASE_URL: databases[app].url,
        });
      expect(await pixcrawler('status', '--check')).toContain('Up to date: nothing pending.');
      const verified = await pixcrawler('verify', '--strict');
      expect(verified).toMatch(/notes\s+ok/);
      expect(verified).toContain('Verification passed.');
      expect(await pixcrawler('revert')).toMatch(/Reverted AddNotes\d+\./);
      expect(await databases[app].query("SELECT to_regclass('notes') AS notes")).toEqual([
        { notes: null },
      ]);
      const migrated = await pixcrawler('migrate', '--verify');
      expect(migrated).toContain('Applied 1 migration(s).');
      expect(migrated).toContain('Verification passed.');
    });
  });

  it('serve a crawl through to a downloaded export, and exit 0 promptly on SIGTERM', async () => {
    await eachApp(async (app) => {
      const server = await boot(app, {
        DATABASE_URL: databases[app].url,
        IMAGE_DIR: path.join(dirs[app], 'images'),
        EXPORT_DIR: path.join(dirs[app], `exports-${typeormVersion ?? 'newest'}`),
      });
      const entries = await exportOverHttp(server.base).catch(async (error) => {
        await server.stop();
        throw error;
      });
      const { code, signal, milliseconds } = await server.stop();
      if (code !== 0) throw new Error(`exit ${code ?? signal} on SIGTERM:\n${server.output()}`);
      expect(milliseconds).toBeLessThan(10_000);

      // The manifest, then every image's file with the bytes the crawler stored.
      const [[manifestName, manifest], ...files] = entries;
      expect(manifestName).toBe('manifest.jsonl');
      const rows = manifest
        .toString('utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line));
      expect(rows.map((row) => [row.filename, row.storage_url])).toEqual(
        Object.keys(IMAGES).map((name) => [name, `crawl/${name}`]),
      );
      const named = files.map(([name, bytes]) => [name.replace(/^images\/\d+-/, ''), bytes]);
      expect(named).toEqual(Object.entries(IMAGES));
    });
  });

  it('pass their own jest suites, on databases the testing kit creates on the same server', async () => {
    const outputs = await eachApp((app) =>
      run(app, 'jest', ['--ci'], { DATABASE_URL: process.env.PIXCRAWLER_TEST_SERVER_URL! }),
    );
    for (const app of APPS) expect(outputs[app]).toMatch(/Tests:\s+2 passed, 2 total/);
  });
});
