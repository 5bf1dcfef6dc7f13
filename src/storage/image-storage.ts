import { closeSync, createReadStream, readSync, realpathSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { SegmentLayout } from './file-batch-protocol';
import { ConfinedFiles, isInside, type ConfinedFile, type Confinement } from './file-confinement';
import { FileBatchThread, type FileBatchSession } from './file-batch-thread';

/** What storages need to know of an image to find its bytes. */
export interface StoredImage {
  id: number;
  storageUrl: string | null;
}

/**
 * An image's file with its size: its bytes in memory, a stream (large files), or an open file
 * whose bytes `copyTo` reads straight into the archive's output buffer (then closes it);
 * `discard` closes it unread.
 */
export type ImageFile =
  | { size: number; bytes: Buffer }
  | { size: number; stream: Readable }
  | { size: number; copyTo(target: Buffer, offset: number): void; discard(): void };

/** How an archive lays its entries out, for `ImageReader.readLaidOut`. */
export interface ArchiveLayout {
  /** Bytes of room an image's entry header takes, before the file's bytes. */
  headerBytes(image: StoredImage): number;
  /** Each file's bytes are padded with zeros to a multiple of this (tar: 512; zip: 1). */
  block: number;
  /** Whether each file's CRC-32 is needed (zip). */
  crc: boolean;
}

/**
 * A run of consecutive files read straight into one piece of the archive: each file's room for
 * its header (at `offset`, left for the writer to fill), then its bytes and padding.
 */
export interface LaidOutFiles {
  bytes: Buffer;
  files: Array<{ offset: number; size: number; crc: number }>;
  /**
   * Call once `bytes` is written or copied out: the reader fills that memory again (it holds a
   * few such runs; one never released stops the reader once it has none left).
   */
  release(): void;
}

/**
 * Reads many images' files in a row, for one archive export. `read` may return synchronously
 * (local disk: a small file is read in one go, faster than any stream) or a promise; the writer
 * keeps up to `concurrency` reads in flight and writes the files in order.
 */
export interface ImageReader {
  readonly concurrency: number;
  read(image: StoredImage): ImageFile | Promise<ImageFile>;
  /**
   * Optional, and used instead of `read` when present: the files of `images` in order, as runs
   * of files laid out as the archive holds them (LaidOutFiles), with any file read on its own
   * (an ImageFile, as `read` returns it) in its place between runs. Reading may start when
   * this is called; the writer calls it for the next batch while it writes the current one,
   * and takes the pieces in the order of the calls.
   */
  readLaidOut?(
    images: StoredImage[],
    layout: ArchiveLayout,
  ): AsyncIterable<LaidOutFiles | ImageFile>;
  /** Called once the export is done with the reader, whether it succeeded or not. */
  close?(): void;
}

/** Where image files live. Exports read each image's bytes through this. */
export interface ImageStorage {
  /** The image's bytes; MissingImageFileError when there is no file. */
  open(image: StoredImage): Promise<Readable>;
  /**
   * A reader for one export's files (optional: without it, exports read each file through
   * `open`). Same rules as `open`: nothing outside the storage is ever read.
   */
  reader?(): ImageReader;
}

/** Files up to this size are read into memory whole; larger ones are streamed. */
export const WHOLE_FILE_LIMIT = 16 * 1024 * 1024;

/**
 * `readLaidOut` reads files up to this size on its thread, into segments of SEGMENT_BYTES; a
 * larger one is read on its own, in its place.
 */
const LAID_OUT_LIMIT = 256 * 1024;
const SEGMENT_BYTES = 1024 * 1024;
/** Files per group a reading thread takes its turn with (some 2 MiB of crawled thumbnails). */
const GROUP_FILES = 256;

/**
 * A storage key that needs no resolving (as crawlers write them, `job-1/42.jpg`): segments that
 * start with a letter, digit, `_` or `-`, so none is empty, `.` or `..`. It lies under the root
 * as written. POSIX separators only; anything else takes path.resolve (a per-file cost in an
 * archive of 50,000 images).
 */
const PLAIN_KEY = path.sep === '/' ? /^(?:[\w-][\w.-]*\/)*[\w-][\w.-]*$/ : /^(?!)/;

export class MissingImageFileError extends Error {
  constructor(
    readonly imageId: number,
    readonly location: string,
    reason: string,
  ) {
    super(`image ${imageId}: ${reason} (${location})`);
    this.name = 'MissingImageFileError';
  }
}

export interface LocalDirectoryStorageOptions {
  /**
   * Read files that have more than one hard link. Off by default: a hard link made inside the
   * root to a file outside it (`/etc/passwd`) cannot be told from a file of the storage but by
   * its link count. Turn it on for storage that links files on purpose (deduplication).
   */
  allowHardLinks?: boolean;
}

/**
 * Files on a local disk: `storage_url` is a `file://` URL, or a relative key (`job-1/42.jpg`)
 * under the root directory. Every file it reads is proven to lie inside the root after it is
 * opened, from the open file itself (see file-confinement.ts), so a directory swapped for a
 * symlink at any moment changes nothing: a key that climbs out (`../`), a `file:///etc/passwd`
 * URL, a symlink to a file outside, a path through a directory that is (or becomes) a symlink
 * to one outside and a hard-linked file (unless allowed) all fail with a MissingImageFileError
 * naming the image, and not a byte of such a file is read.
 */
export class LocalDirectoryStorage implements ImageStorage {
  readonly root: string;
  readonly allowHardLinks: boolean;

  constructor(root: string, options: LocalDirectoryStorageOptions = {}) {
    this.root = path.resolve(root);
    this.allowHardLinks = options.allowHardLinks ?? false;
  }

  /**
   * The file path for a storage_url, or undefined when it is not on this storage (another
   * scheme, or a path that lies outside the root as written; symlinks are checked by `open`).
   */
  resolve(storageUrl: string): string | undefined {
    let resolved: string;
    if (storageUrl.startsWith('file://')) {
      try {
        resolved = fileURLToPath(storageUrl);
      } catch {
        return undefined; // file://host/… or a malformed URL: not a local file
      }
    } else if (/^[a-z][a-z0-9+.-]*:/i.test(storageUrl)) {
      return undefined; // http://, s3://, …
    } else if (PLAIN_KEY.test(storageUrl)) {
      return `${this.root}${this.root.endsWith(path.sep) ? '' : path.sep}${storageUrl}`;
    } else {
      resolved = path.resolve(this.root, storageUrl);
    }
    return isInside(this.root, resolved) ? resolved : undefined;
  }

  async open(image: StoredImage): Promise<Readable> {
    const { fd } = this.openConfined(image, new ConfinedFiles(this.confinement()));
    return createReadStream('', { fd, autoClose: true });
  }

  /**
   * Reads files in one go each (open, fstat, read, close), synchronously: for an archive of many
   * small images, the thread-pool round trips of asynchronous reads cost more than the reads.
   * `readLaidOut` has the reading threads (FileBatchThread, one per core) do that for groups of
   * small files while the export's thread writes; `read` does it on the caller's thread (large
   * files, symlinks, anything a thread passes back), and the archive writer yields to the event
   * loop between output chunks. Both open each file through ConfinedFiles: `read` proves its
   * directory afresh for every file, a thread once per group of files (it keeps that
   * directory's open handle, not a verdict on its path: a rename or swap meanwhile changes
   * nothing that handle reaches).
   */
  reader(): ImageReader {
    const confinement = this.confinement();
    const files = new ConfinedFiles(confinement);
    const reader: ImageReader = {
      concurrency: 1,
      read: (image: StoredImage): ImageFile => {
        const opened = this.openConfined(image, files);
        let fd = opened.fd;
        const { size } = opened.info;
        try {
          if (size > WHOLE_FILE_LIMIT) {
            const stream = createReadStream('', { fd, autoClose: true });
            fd = -1; // the stream closes it
            return { size, stream };
          }
          const open = fd;
          fd = -1; // copyTo or discard closes it
          return {
            size,
            copyTo: (target, offset) => {
              try {
                let read = 0;
                while (read < size) {
                  const n = readSync(open, target, offset + read, size - read, read);
                  if (n === 0) throw this.missing(image, 'file shrank while being read');
                  read += n;
                }
              } finally {
                closeSync(open);
              }
            },
            discard: () => closeSync(open),
          };
        } finally {
          if (fd >= 0) closeSync(fd);
        }
      },
    };
    const threads = FileBatchThread.shared();
    if (threads.length > 0) {
      // One session on each thread for the whole export (their slots are reused batch to
      // batch), opened on the first run of files and closed with the reader.
      let opened: { layout: SegmentLayout; sessions: FileBatchSession[] } | undefined;
      const sessionsFor = (layout: ArchiveLayout): FileBatchSession[] => {
        const wanted = { block: layout.block, crc: layout.crc, placeLimit: LAID_OUT_LIMIT };
        if (opened && !sameLayout(opened.layout, wanted)) reader.close!();
        opened ??= {
          layout: wanted,
          sessions: threads.map((thread) => thread.open(wanted, SEGMENT_BYTES, confinement)),
        };
        return opened.sessions;
      };
      // Reading starts when this is called: the groups are handed to the threads at once.
      reader.readLaidOut = (images, layout) => {
        // A file with no path on this storage goes to a thread as '' and comes back passed,
        // for `read` to fail on it in its place, with the same error. The threads prove each
        // file they read inside the root as `read` does, and pass back any that is not.
        const paths = images.map((image) => {
          try {
            return this.locate(image);
          } catch {
            return '';
          }
        });
        const headerBytes = images.map(layout.headerBytes);
        // Groups of files take turns on the threads, each reading ahead of the export.
        const sessions = sessionsFor(layout);
        const groups: Array<{ session: FileBatchSession; count: number }> = [];
        for (let from = 0; from < images.length; from += GROUP_FILES) {
          const to = Math.min(from + GROUP_FILES, images.length);
          const session = sessions[groups.length % sessions.length];
          session.enqueue(paths.slice(from, to), headerBytes.slice(from, to));
          groups.push({ session, count: to - from });
        }
        return (async function* () {
          let next = 0;
          let finished = false;
          try {
            for (const { session, count } of groups) {
              for await (const piece of session.take(count)) {
                if ('passed' in piece) {
                  yield reader.read(images[next++]);
                } else {
                  next += piece.files.length;
                  yield piece;
                }
              }
            }
            finished = true;
          } finally {
            // Groups left enqueued would come out in the next batch's place: start afresh.
            if (!finished) reader.close!();
          }
        })();
      };
      reader.close = () => {
        for (const session of opened?.sessions ?? []) session.close();
        opened = undefined;
      };
    }
    return reader;
  }

  /** What every file read must satisfy; the root's real path is resolved now. */
  private confinement(): Confinement {
    return {
      root: this.root,
      realRoot: realpathOr(this.root),
      allowHardLinks: this.allowHardLinks,
    };
  }

  private missing(image: StoredImage, reason: string, file = this.locate(image)) {
    return new MissingImageFileError(image.id, file, reason);
  }

  /**
   * The image's file, open and proven confined (ConfinedFiles), with its fstat. A file that is a
   * symlink is followed only when its target lies inside the root, checked before the target is
   * opened too, so nothing outside is ever opened through it. No directory handle is kept from
   * one call to the next.
   */
  private openConfined(image: StoredImage, files: ConfinedFiles): ConfinedFile {
    const file = this.locate(image);
    try {
      let opened = files.open(file);
      if ('symlink' in opened && opened.symlink) {
        const real = realpathOr(file);
        if (!isInside(files.confinement.realRoot, real)) {
          throw this.missing(image, `resolves to ${real}, outside the storage root ${this.root}`);
        }
        opened = files.open(real);
      }
      if ('problem' in opened) throw this.missing(image, opened.problem, file);
      return opened;
    } finally {
      files.forget();
    }
  }

  /** The path of an image's file as written (what it is is proven once it is open). */
  private locate(image: StoredImage): string {
    if (!image.storageUrl) {
      throw new MissingImageFileError(image.id, '(none)', 'no storage_url recorded');
    }
    const file = this.resolve(image.storageUrl);
    if (!file) {
      throw new MissingImageFileError(
        image.id,
        image.storageUrl,
        `not a file under the storage root ${this.root}`,
      );
    }
    return file;
  }
}

const sameLayout = (a: SegmentLayout, b: SegmentLayout) =>
  a.block === b.block && a.crc === b.crc && a.placeLimit === b.placeLimit;

/** The real path of a file, or the path itself when it cannot be resolved. */
function realpathOr(file: string): string {
  try {
    return realpathSync.native(file);
  } catch {
    return file;
  }
}
