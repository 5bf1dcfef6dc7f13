/**
 * The messages between an export and the thread that reads its small files (file-batch-worker.ts,
 * driven by FileBatchThread). Types only.
 */
import type { Confinement } from './file-confinement';

/** How an archive lays out each file it holds: room for its header, then its bytes, padded. */
export interface SegmentLayout {
  /** Data is padded with zeros to a multiple of this (tar: 512; zip: 1). */
  block: number;
  /** Whether to compute each file's CRC-32 (zip). */
  crc: boolean;
  /** Files larger than this are not read by the thread (the export streams them itself). */
  placeLimit: number;
}

export type ToFileBatchThread =
  /**
   * Opens a session: files are laid out this way, into the session's slots (shared memory, the
   * same few segments over and over: the export copies a segment out before it asks for that
   * slot to be filled again). Fresh segments per reply made the thread collect garbage hundreds
   * of times per export, and held on to some 60 MB in its malloc arena.
   */
  | {
      kind: 'open';
      session: number;
      layout: SegmentLayout;
      slots: SharedArrayBuffer[];
      /** What each file must satisfy once open to be read here (else it is passed back). */
      confinement: Confinement;
    }
  /**
   * More files for the session, in archive order: each file's path ('' when the export reads
   * that one itself) and the bytes of room its header needs.
   */
  | { kind: 'files'; session: number; paths: string[]; headerBytes: number[] }
  /** Asks for the session's next segment, laid out in slot `slot`. */
  | { kind: 'read'; session: number; slot: number }
  /** Ends the session (closing a file it holds open). */
  | { kind: 'close'; session: number };

/**
 * Status of one file in a reply. PLACED: its header room, bytes and padding are in the segment.
 * PASSED: the thread did not read it (no path, a symlink, not a regular file, not proven inside
 * the root, too large, an error of any kind): the export reads it itself, through the storage's own checks and errors.
 */
export const PLACED = 0;
export const PASSED = 1;

export interface FromFileBatchThread {
  session: number;
  /** The slot the segment is in: its first `used` bytes hold files. */
  slot: number;
  used: number;
  /**
   * Four numbers per file covered, in order: status, offset of its header room in the segment,
   * its size in bytes, its CRC-32 (0 unless asked for). A reply covers some placed files and
   * ends early at a passed one, so the export can handle that one in its place.
   */
  files: number[];
  /** An unexpected failure of the thread itself. */
  error?: string;
}
