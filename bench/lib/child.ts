import { fork } from 'node:child_process';
import { runStandalone, type Benchmark } from './runner';

/**
 * Benchmarks that measure memory run each measured task in a child process of their own file, so
 * one task's heap never counts for the next. The child is the same file started with a flag.
 */

/** Runs `task` in a child process of `file` (started with `flag`) and resolves with its result. */
export function runInChild<T extends { mode: string }, R>(
  file: string,
  flag: string,
  task: T,
  { exposeGc = false } = {},
): Promise<R> {
  return new Promise((resolve, reject) => {
    const execArgv = [
      ...(exposeGc ? ['--expose-gc'] : []),
      '-r',
      'ts-node/register/transpile-only',
    ];
    const worker = fork(file, [flag, JSON.stringify(task)], { execArgv });
    let result: R | undefined;
    worker.on('message', (message) => {
      result = message as R;
    });
    worker.on('error', reject);
    worker.on('exit', (code) => {
      if (code === 0 && result) resolve(result);
      else reject(new Error(`${flag} child (${task.mode}) exited with code ${code}`));
    });
  });
}

/**
 * The entry of a benchmark file run directly: as a child when started with `flag` (runs one
 * task, sends its result, exits), else the benchmark on its own.
 */
export function childOrStandalone<T, R>(
  benchmark: Benchmark,
  flag: string,
  child: (task: T) => Promise<R>,
): void {
  const at = process.argv.indexOf(flag);
  if (at < 0) {
    runStandalone(benchmark);
    return;
  }
  child(JSON.parse(process.argv[at + 1]) as T).then(
    (result) => process.send!(result, () => process.exit(0)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
