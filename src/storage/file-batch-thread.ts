import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import {
  PLACED,
  type FromFileBatchThread,
  type SegmentLayout,
  type ToFileBatchThread,
} from './file-batch-protocol';

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
 * process has loaded already; a TypeScript loader in the thread would add some 60 MB to it.
 */
function startWorker(): Worker {
  if (path.extname(__filename) !== '.ts') {
    return new Worker(path.join(__dirname, 'file-batch-worker.js'));
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const ts = require('typescript') as typeof import('typescript');
  const source = readFileSync(path.join(__dirname, 'file-batch-worker.ts'), 'utf8');
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
  });
  return new Worker(outputText, { eval: true });
}

/**
 * Slots of shared memory per session (1 MiB each in exports): the export holds the segments it
 * has handed to the destination until they are written (8 MiB of a local file's write buffer),
 * and the thread fills the others meanwhile.
 */
const SLOTS = 16;

/**
 * The thread (file-batch-worker.ts) that reads archive exports' small files, one per process,
 * started on first use and shared by every export: each export is a session of its own. It
 * holds the process open only while a session is open.
 */
export class FileBatchThread {
  private static instance?: FileBatchThread | null;
  private readonly worker: Worker;
  private readonly sessions = new Map<number, (reply: FromFileBatchThread) => void>();
  private nextSession = 1;
  /** Slot sets of finished sessions, for the next ones: shared memory is slow to be freed. */
  private readonly spareSlots: SharedArrayBuffer[][] = [];
  private failure?: Error;

  /**
   * The process's thread, started now if need be; undefined when a thread cannot be started
   * here (the export then reads each file on its own thread, as before).
   */
  static shared(): FileBatchThread | undefined {
    if (FileBatchThread.instance === undefined) {
      try {
        FileBatchThread.instance = new FileBatchThread();
      } catch {
        FileBatchThread.instance = null;
      }
    }
    return FileBatchThread.instance ?? undefined;
  }

  private constructor() {
    this.worker = startWorker();
    this.worker.unref();
    this.worker.on('message', (reply: FromFileBatchThread) => {
      this.sessions.get(reply.session)?.(reply);
    });
    const fail = (error: Error) => {
      this.failure = error;
      if (FileBatchThread.instance === this) FileBatchThread.instance = undefined;
      const failed = { session: 0, slot: -1, used: 0, files: [], error: error.message };
      for (const [session, deliver] of this.sessions) deliver({ ...failed, session });
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`the file reading thread exited (${code})`)));
  }

  /** A set of SLOTS slots of `bytes` each: a spare one, or new. */
  private takeSlots(bytes: number): SharedArrayBuffer[] {
    const spare = this.spareSlots.findIndex((slots) => slots[0].byteLength === bytes);
    if (spare >= 0) return this.spareSlots.splice(spare, 1)[0];
    return Array.from({ length: SLOTS }, () => new SharedArrayBuffer(bytes));
  }

  /**
   * Reads `paths` (already checked to lie in the storage; '' for a file the caller reads itself)
   * laid out with `headerBytes` of room before each, as segments of `segmentBytes` in order.
   * A segment's slot is filled again only after the caller releases it, so the thread reads
   * ahead into as many slots as the caller does not hold.
   */
  async *read(
    paths: string[],
    headerBytes: number[],
    layout: SegmentLayout,
    segmentBytes: number,
  ): AsyncGenerator<SegmentRead> {
    if (this.failure) throw this.failure;
    const session = this.nextSession++;
    const replies: FromFileBatchThread[] = [];
    let wake: (() => void) | undefined;
    const notify = () => {
      const woken = wake;
      wake = undefined;
      woken?.();
    };
    this.sessions.set(session, (reply) => {
      replies.push(reply);
      notify();
    });
    if (this.sessions.size === 1) this.worker.ref();
    const send = (message: ToFileBatchThread) => this.worker.postMessage(message);
    const slots = this.takeSlots(segmentBytes);
    const free = slots.map((_, slot) => slot);
    let ended = false;
    /** Segments the caller holds: the slot set is spare once the session ended and none is. */
    let held = 0;
    const release = (slot: number) => {
      held--;
      if (ended) {
        if (held === 0) this.spareSlots.push(slots);
        return;
      }
      free.push(slot);
      notify();
    };
    send({ kind: 'open', session, layout, slots });
    send({ kind: 'files', session, paths, headerBytes });
    let covered = 0;
    let asked = 0;
    try {
      while (covered < paths.length) {
        // Each read covers at least one file: never ask for more than there are left.
        while (free.length > 0 && asked < paths.length - covered) {
          send({ kind: 'read', session, slot: free.shift()! });
          asked++;
        }
        // Nothing back yet: wait for a reply, or (all slots held by the caller) a release.
        while (replies.length === 0) await new Promise<void>((resolve) => (wake = resolve));
        const reply = replies.shift()!;
        asked--;
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
        if (placed.length > 0) {
          let released = false;
          held++;
          yield {
            bytes: Buffer.from(slots[reply.slot], 0, reply.used),
            files: placed,
            release: () => {
              if (released) return;
              released = true;
              release(reply.slot);
            },
          };
        } else {
          free.push(reply.slot);
        }
        if (passed) yield { passed: true };
      }
    } finally {
      // The thread is done with the slots once it has read the close (messages keep their
      // order); the caller, once it has released every segment it was given.
      send({ kind: 'close', session });
      this.sessions.delete(session);
      if (this.sessions.size === 0) this.worker.unref();
      ended = true;
      if (held === 0) this.spareSlots.push(slots);
    }
  }
}
