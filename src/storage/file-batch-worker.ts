/**
 * The thread that reads an archive export's small files (started by FileBatchThread): for each
 * file, open, fstat, read and close, its bytes read straight into a segment of the archive with
 * room left for its header, and the segment handed back without a copy. An export of many
 * small images spends most of its time in these four system calls; here they run beside the
 * export's own thread, which meanwhile writes headers, streams rows and writes the output.
 *
 * It reads a file only once it is proven inside the storage, as the export's own reads are
 * (file-confinement.ts, from the open descriptor), and passes back every file that is not a plain
 * case (a symlink, not a regular file, not proven inside, too large, any error) for the export
 * to read itself, with the storage's own checks and errors.
 */
import { closeSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { crc32 } from 'node:zlib';
// Run from the library's sources, this file is compiled on its own with file-confinement
// compiled in (see FileBatchThread): it loads nothing else but Node's own modules.
import { ConfinedFiles } from './file-confinement';
import type {
  FromFileBatchThread,
  PASSED as PassedStatus,
  PLACED as PlacedStatus,
  SegmentLayout,
  ToFileBatchThread,
} from './file-batch-protocol';

const PLACED: typeof PlacedStatus = 0;
const PASSED: typeof PassedStatus = 1;

interface Session {
  layout: SegmentLayout;
  /** Opens the files, proven inside the storage; its directory handles serve one group. */
  files: ConfinedFiles;
  slots: Uint8Array[];
  /** The files of the groups not yet laid out, in order ('files' messages add a group). */
  paths: string[];
  headerBytes: number[];
  /** Where each group ends in `paths`: a segment never spans two (they may go to other places). */
  ends: number[];
  /** Index of the next file to lay out. */
  next: number;
  /** A file opened for a segment it did not fit in, kept open for the next one. */
  held?: { fd: number; size: number };
}

const sessions = new Map<number, Session>();
const port = parentPort!;

port.on('message', (message: ToFileBatchThread) => {
  try {
    handle(message);
  } catch (error) {
    const reply: FromFileBatchThread = {
      session: message.session,
      slot: message.kind === 'read' ? message.slot : -1,
      used: 0,
      files: [],
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    };
    port.postMessage(reply);
  }
});

function handle(message: ToFileBatchThread): void {
  switch (message.kind) {
    case 'open':
      sessions.set(message.session, {
        layout: message.layout,
        files: new ConfinedFiles(message.confinement),
        slots: message.slots.map((slot) => new Uint8Array(slot)),
        paths: [],
        headerBytes: [],
        ends: [],
        next: 0,
      });
      return;
    case 'files': {
      const session = sessions.get(message.session)!;
      session.paths.push(...message.paths);
      session.headerBytes.push(...message.headerBytes);
      session.ends.push(session.paths.length);
      return;
    }
    case 'read': {
      port.postMessage(readSegment(message.session, sessions.get(message.session)!, message.slot));
      return;
    }
    case 'close': {
      const session = sessions.get(message.session);
      if (session?.held) closeSync(session.held.fd);
      session?.files.forget();
      sessions.delete(message.session);
    }
  }
}

/**
 * The session's next files, laid out in a slot: up to the end of their group, or the first file
 * passed back, or a full slot.
 */
function readSegment(id: number, session: Session, slot: number): FromFileBatchThread {
  const { block, crc, placeLimit } = session.layout;
  const segment = session.slots[slot];
  const segmentBytes = segment.length;
  const files: number[] = [];
  let used = 0;
  const end = session.ends[0] ?? 0;
  while (session.next < end) {
    const opened = session.held ?? open(session.paths[session.next], placeLimit, session.files);
    session.held = undefined;
    if (!opened) {
      files.push(PASSED, used, 0, 0);
      session.next++;
      break;
    }
    const room = session.headerBytes[session.next];
    const padded = opened.size + ((block - (opened.size % block)) % block);
    if (used + room + padded > segmentBytes) {
      if (used > 0) {
        session.held = opened; // the next segment starts with it
        break;
      }
      closeSync(opened.fd); // fits no segment (a long name's header): the export reads it
      files.push(PASSED, used, 0, 0);
      session.next++;
      break;
    }
    const start = used + room;
    if (!readWhole(opened, segment, start)) {
      files.push(PASSED, used, 0, 0); // it shrank as it was read: the export finds out why
      session.next++;
      break;
    }
    const sum = crc ? crc32(segment.subarray(start, start + opened.size)) : 0;
    files.push(PLACED, used, opened.size, sum);
    // The header room is the export's to write; the padding is zeros (slots are reused).
    segment.fill(0, start + opened.size, start + padded);
    used += room + padded;
    session.next++;
  }
  if (session.next === end && end > 0) {
    // The group is laid out: its paths are dropped, and its directories' handles closed (the
    // next group proves its directories afresh).
    session.files.forget();
    session.paths = session.paths.slice(end);
    session.headerBytes = session.headerBytes.slice(end);
    session.ends = session.ends.slice(1).map((groupEnd) => groupEnd - end);
    session.next = 0;
  }
  return { session: id, slot, used, files };
}

/**
 * An open regular file of at most `limit` bytes, proven inside the storage, or undefined for the
 * export to read itself (with the storage's own checks and errors).
 */
function open(
  path: string,
  limit: number,
  files: ConfinedFiles,
): { fd: number; size: number } | undefined {
  if (path === '') return undefined;
  const opened = files.open(path);
  if ('problem' in opened) return undefined;
  if (opened.info.size > limit) {
    closeSync(opened.fd);
    return undefined;
  }
  return { fd: opened.fd, size: opened.info.size };
}

/** Reads the whole file at `offset` and closes it; false when it ended early. */
function readWhole(
  file: { fd: number; size: number },
  target: Uint8Array,
  offset: number,
): boolean {
  try {
    let read = 0;
    while (read < file.size) {
      const n = readSync(file.fd, target, offset + read, file.size - read, read);
      if (n === 0) return false;
      read += n;
    }
    return true;
  } catch {
    return false;
  } finally {
    closeSync(file.fd);
  }
}
