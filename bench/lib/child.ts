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
 * A child process kept running between measurements, so that measurements of several
 * contenders can alternate (A B C, B C A, …) while each keeps its warm code and connections:
 * on a shared machine, whose speed drifts over seconds, back-to-back runs of one contender
 * would measure the drift.
 */
export interface ChildSession<R, E> {
  /** One measurement. */
  run(): Promise<R>;
  /** Ends the child; resolves with its closing result (peak memory, say). */
  end(): Promise<E>;
}

/** What a session child does: set up from its task, then answer `run` and `end`. */
export type SessionChild<T, R, E> = (task: T) => Promise<ChildSession<R, E>>;

const SESSION_FLAG = '--child-session';

/** Starts a session child of `file` (started with `flag`); resolves once it is set up. */
export async function startChildSession<T extends { mode: string }, R, E>(
  file: string,
  flag: string,
  task: T,
  { exposeGc = false } = {},
): Promise<ChildSession<R, E>> {
  const execArgv = [...(exposeGc ? ['--expose-gc'] : []), '-r', 'ts-node/register/transpile-only'];
  const worker = fork(file, [flag, JSON.stringify(task), SESSION_FLAG], { execArgv });
  let waiting: { resolve(value: unknown): void; reject(error: Error): void } | undefined;
  let exited: Error | undefined;
  worker.on('message', (message: { result?: unknown; error?: string }) => {
    const pending = waiting;
    waiting = undefined;
    if (message.error !== undefined) pending?.reject(new Error(message.error));
    else pending?.resolve(message.result);
  });
  worker.on('exit', (code) => {
    exited = new Error(`${flag} child (${task.mode}) exited with code ${code}`);
    waiting?.reject(exited);
    waiting = undefined;
  });
  const ask = <V>(command?: 'run' | 'end') =>
    new Promise<V>((resolve, reject) => {
      if (exited) return reject(exited);
      waiting = { resolve: resolve as (value: unknown) => void, reject };
      if (command) worker.send(command);
    });
  await ask(); // set up
  return { run: () => ask<R>('run'), end: () => ask<E>('end') };
}

/**
 * The entry of a benchmark file run directly: as a child when started with `flag` (one task:
 * sends its result and exits; a session: answers `run` and `end`), else the benchmark on its
 * own.
 */
export function childOrStandalone<T, R>(
  benchmark: Benchmark,
  flag: string,
  child: ((task: T) => Promise<R>) | { session: SessionChild<T, unknown, unknown> },
): void {
  const at = process.argv.indexOf(flag);
  if (at < 0) {
    runStandalone(benchmark);
    return;
  }
  const task = JSON.parse(process.argv[at + 1]) as T;
  const fail = (error: unknown) => {
    console.error(error);
    process.send!({ error: String(error) }, () => process.exit(1));
  };
  if (typeof child !== 'function') {
    if (!process.argv.includes(SESSION_FLAG)) throw new Error(`${flag}: a session child`);
    child.session(task).then((opened) => {
      process.send!({ result: 'ready' });
      process.on('message', (command: 'run' | 'end') => {
        const answer = command === 'run' ? opened.run() : opened.end();
        answer.then(
          (result) =>
            process.send!({ result }, () => (command === 'end' ? process.exit(0) : undefined)),
          fail,
        );
      });
    }, fail);
    return;
  }
  child(task).then(
    (result) => process.send!(result, () => process.exit(0)),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
