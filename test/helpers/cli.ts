import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

/** The `pixcrawler-db` CLI as an operator runs it: a separate process on one database. */

const BIN = path.join(__dirname, '..', '..', 'bin', 'pixcrawler-db.js');

export interface CliRun {
  child: ChildProcess;
  /** Output so far (stdout and stderr interleaved). */
  output: () => string;
  /** Standard output alone (with --json: the JSON document). */
  stdout: () => string;
  /** Resolves with the exit code (or the signal that ended the process). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function spawnCli(args: string[], databaseUrl: string, env: NodeJS.ProcessEnv = {}): CliRun {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, DATABASE_URL: databaseUrl, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  let stdout = '';
  child.stdout?.on('data', (chunk) => {
    output += chunk;
    stdout += chunk;
  });
  child.stderr?.on('data', (chunk) => (output += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return { child, output: () => output, stdout: () => stdout, exited };
}

export async function runCli(
  args: string[],
  databaseUrl: string,
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; output: string; stdout: string }> {
  const run = spawnCli(args, databaseUrl, env);
  const { code } = await run.exited;
  return { code, output: run.output(), stdout: run.stdout() };
}

/** Asserts a run's exit code; a failure shows what the command printed, not just the number. */
export function expectExit(run: { code: number | null; output: string }, code: number): void {
  if (run.code !== code) {
    throw new Error(`exited ${run.code}, expected ${code}; it printed:\n${run.output}`);
  }
}
