import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  PLACED,
  type FromFileBatchThread,
  type SegmentLayout,
  type ToFileBatchThread,
} from './file-batch-protocol';
import type { Confinement } from './file-confinement';

/** One file of a segment the thread filled: where its header goes, its size and CRC-32. */
export interface PlacedFile {
  /** Offset of the room for its header; the bytes follow the room. */
  offset: number;
  size: number;
  crc: number;
}

/** What the thread sent back for the next files, in archive order. */
export type SegmentRead =
  /**
   * Files laid out in `bytes`, room for headers left unwritten: shared memory the thread fills
   * again once the caller calls `release` (once written or copied out).
   */
  | { bytes: Buffer; files: PlacedFile[]; release(): void }
  /** One file the thread did not read: the caller reads it itself. */
  | { passed: true };

/**
 * The worker thread. Built, the library runs file-batch-worker.js. From its TypeScript sources
 * (tests, benchmarks, ts-node), the worker is compiled here by TypeScript alone, which the
 * process has loaded already (a TypeScript loader in the thread would add some 60 MB to it),
 * with the one module of the library it loads, file-confinement, compiled in.
 */
function startWorker(): Worker {
  if (path.extname(__filename) !== '.ts') {
    return new Worker(path.join(__dirname, 'file-batch-worker.js'));
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const compile = (name: string) =>
    ts.transpileModule(readFileSync(path.join(__dirname, `${name}.ts`), 'utf8'), {
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
      },
    }).outputText;
  const confinement =
    `(() => { const module = { exports: {} }; const exports = module.exports;\n` +
    `${compile('file-confinement')}\nreturn module.exports; })()`;
  const worker = compile('file-batch-worker').replace(
    /require\("\.\/file-confinement"\)/,
    () => confinement,
  );
  return new Worker(worker, { eval: true });
}

/**
 * Slots of shared memory per session (1 MiB each in exports): the export holds the segments it
 * has handed to the destination until they are written (8 MiB of a local file's write buffer,
 * spread over the threads), and the thread fills the others meanwhile.
 */
const SLOTS = 8;

/**
 * Threads that read files, at most: each does one file's system calls at a time, which is what
 * an export of small files waits on (tar -cf makes the same calls, one thread of them).
 */
const MAX_THREADS = 4;

/** Slot sets a thread keeps for its next sessions (8 MiB each with 1 MiB segments). */
const MAX_SPARE_SLOT_SETS = 2;

/**
 * A thread (file-batch-worker.ts) that reads archive exports' small files. A few per process
 * (one per core, up to MAX_THREADS), started on first use and shared by every export: each
 * export has a session on each. A thread holds the process open only while a session is open.
 */
export class FileBatchThread {
  private static pool?: FileBatchThread[];
  private readonly worker: Worker;
  private readonly sessions = new Map<number, (reply: FromFileBatchThread) => void>();
  private nextSession = 1;
  /** Slot sets of closed sessions, for the next ones: shared memory is slow to be freed. */
  private readonly spareSlots: SharedArrayBuffer[][] = [];
  private failure?: Error;

  /**
   * The process's threads, started now if need be (one replaces a thread that failed); none
   * when a thread cannot be started here (exports then read each file on their own thread).
   */
  static shared(): FileBatchThread[] {
    const wanted = Math.min(MAX_THREADS, availableParallelism());
    const pool = (FileBatchThread.pool ??= []).filter((thread) => !thread.failure);
    try {
      while (pool.length < wanted) pool.push(new FileBatchThread());
    } catch {
      // fewer threads (or none): what could be started
    }
    FileBatchThread.pool = pool;
    return pool;
  }

  private constructor() {
    this.worker = startWorker();
    this.worker.unref();
    this.worker.on('message', (reply: FromFileBatchThread) => {
      this.sessions.get(reply.session)?.(reply);
    });
    const fail = (error: Error) => {
      this.failure ??= error;
      const failed = { session: 0, slot: -1, used: 0, files: [], error: error.message };
      for (const [session, deliver] of this.sessions) deliver({ ...failed, session });
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the file reading thread exited (${code})`)));
  }

  /**
   * A session for one export: its files are laid out this way, in segments of `segmentBytes`,
   * and read only when proven to satisfy `confinement` once open.
   */
  open(layout: SegmentLayout, segmentBytes: number, confinement: Confinement): FileBatchSession {
    if (this.failure) throw this.failure;
    const id = this.nextSession++;
    const spare = this.spareSlots.findIndex((slots) => slots[0].byteLength === segmentBytes);
    const slots =
      spare >= 0
        ? this.spareSlots.splice(spare, 1)[0]
        : Array.from({ length: SLOTS }, () => new SharedArrayBuffer(segmentBytes));
    const session = new FileBatchSession(id, slots, (message) => this.worker.postMessage(message));
    this.sessions.set(id, (reply) => session.receive(reply));
    if (this.sessions.size === 1) this.worker.ref();
    this.worker.postMessage({
      kind: 'open',
      session: id,
      layout,
      slots,
      confinement,
    } satisfies ToFileBatchThread);
    session.onClosed = (idle) => {
      this.sessions.delete(id);
      if (this.sessions.size === 0) this.worker.unref();
      void idle.then(() => {
        // A burst of concurrent exports leaves sets behind: keep a few, let the rest be freed.
        if (this.spareSlots.length < MAX_SPARE_SLOT_SETS) this.spareSlots.push(slots);
      });
    };
    return session;
  }
}

/**
 * One export's reads on one thread: groups of files in archive order, read ahead into the
 * session's slots as far as they go. A segment's slot is filled again once the caller releases
 * it; a segment never spans two groups, so groups can take turns with other places' files.
 */
export class FileBatchSession {
  private readonly replies: FromFileBatchThread[] = [];
  private readonly free: number[];
  private wake?: () => void;
  /** Reads asked of the thread and not answered yet. */
  private asked = 0;
  /** Files enqueued, and files the thread's replies covered so far. */
  private queued = 0;
  private answered = 0;
  /** Segments the caller holds (not released). */
  private held = 0;
  private closed = false;
  private allReleased?: () => void;
  /** Set by the thread: told when the session is closed, with when its slots are all back. */
  onClosed?: (idle: Promise<void>) => void;

  constructor(
    private readonly id: number,
    private readonly slots: SharedArrayBuffer[],
    private readonly send: (message: ToFileBatchThread) => void,
  ) {
    this.free = slots.map((_, slot) => slot);
  }

  /**
   * Adds a group of files, after those enqueued before: their paths (already checked to lie in
   * the storage; '' for a file the caller reads itself) and the room each header needs.
   */
  enqueue(paths: string[], headerBytes: number[]): void {
    if (this.closed) throw new Error('the file reading session is closed');
    this.send({ kind: 'files', session: this.id, paths, headerBytes });
    this.queued += paths.length;
    this.ask();
  }

  /** The segments of the next `count` files enqueued (whole groups), in order. */
  async *take(count: number): AsyncGenerator<SegmentRead> {
    let covered = 0;
    while (covered < count) {
      while (this.replies.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
      }
      const reply = this.replies.shift()!;
      if (reply.error) throw new Error(`the file reading thread failed: ${reply.error}`);
      const placed: PlacedFile[] = [];
      let passed = false;
      for (let i = 0; i < reply.files.length; i += 4) {
        if (reply.files[i] === PLACED) {
          placed.push({
            offset: reply.files[i + 1],
            size: reply.files[i + 2],
            crc: reply.files[i + 3],
          });
        } else {
          passed = true; // always the reply's last file
        }
      }
      covered += reply.files.length / 4;
      if (placed.length > 0) yield this.segment(reply.slot, reply.used, placed);
      else this.release(reply.slot);
      if (passed) yield { passed: true };
    }
  }

  receive(reply: FromFileBatchThread): void {
    this.asked--;
    this.answered += reply.files.length / 4;
    if (reply.files.length === 0 && !reply.error) {
      this.release(reply.slot); // the group ran out under an earlier read
    } else {
      this.replies.push(reply);
      const wake = this.wake;
      this.wake = undefined;
      wake?.();
    }
    this.ask();
  }

  /**
   * Ends the session: the thread forgets it (and closes a file it holds open); the slots go back
   * to the thread's spares once the caller has released every segment it was given.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.send({ kind: 'close', session: this.id });
    // Messages keep their order: the thread writes no slot of this session after the close.
    const idle =
      this.held === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => (this.allReleased = resolve));
    this.onClosed?.(idle);
  }

  /** Asks the thread to fill every free slot while enqueued files are left to cover. */
  private ask(): void {
    if (this.closed) return;
    // Each read covers at least one file if any is left when the thread gets to it.
    while (this.free.length > 0 && this.asked < this.queued - this.answered) {
      this.send({ kind: 'read', session: this.id, slot: this.free.shift()! });
      this.asked++;
    }
  }

  private release(slot: number): void {
    if (this.closed) return;
    this.free.push(slot);
    this.ask();
  }

  private segment(slot: number, used: number, files: PlacedFile[]): SegmentRead {
    let released = false;
    this.held++;
    return {
      bytes: Buffer.from(this.slots[slot], 0, used),
      files,
      release: () => {
        if (released) return;
        released = true;
        this.held--;
        if (this.closed && this.held === 0) this.allReleased?.();
        this.release(slot);
      },
    };
  }
}
