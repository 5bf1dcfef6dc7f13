import { spawn } from 'node:child_process';
import path from 'node:path';

export interface CliResult {
  code: number | null;
  /** stdout and stderr, interleaved as they came. */
  output: string;
}

/** Runs `node bin/pixcrawler-db.js …` with DATABASE_URL set, as an operator would. */
export function runCli(args: string[], databaseUrl: string): Promise<CliResult> {
  const bin = path.join(__dirname, '..', '..', 'bin', 'pixcrawler-db.js');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      env: { ...process.env, DATABASE_URL: databaseUrl },
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}
