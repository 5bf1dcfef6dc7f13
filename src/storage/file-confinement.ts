/**
 * Opening files so that what is read is proven to lie inside a storage root, whatever renames or
 * symlink swaps happen meanwhile. Used by LocalDirectoryStorage and by the threads that read
 * archive exports' files (file-batch-worker.ts), which load it without the library: Node's own
 * modules only.
 *
 * A path checked and then opened can name another file by the time it is opened (a directory
 * swapped for a symlink to /etc in between). So the proof is taken from what is open:
 * - On Linux, a file's directory is opened first and its real path read from the open handle
 *   (/proc/self/fd); the file is then opened *through that handle* (`/proc/self/fd/<dir>/<name>`,
 *   as openat(2) would), with O_NOFOLLOW, so it is the entry of that very directory and not a
 *   symlink. A directory's handle serves the following files of the same directory, until the
 *   caller forgets it: one system call per file beyond the read itself, not one per check.
 * - Elsewhere, the file is opened by its path, and its real path, resolved afterwards, must name
 *   the very file open (same device and inode) and lie inside the root, and resolve the same
 *   again after that comparison. Without openat(2) in Node this narrows the race rather than
 *   closing it: a directory that is a symlink to the outside at the open, real at the first
 *   resolution, a symlink at the comparison and real at the second resolution (three swaps
 *   within microseconds, each timed to the reader's steps) still passes. Where /proc/self/fd
 *   exists, the first way is always taken.
 * Either way the file must be a regular file with one link, unless hard links are allowed (a
 * hard link made inside the root to a file outside cannot be told from any other file but by its
 * link count).
 */
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  readlinkSync,
  realpathSync,
  statSync,
  type Stats,
} from 'node:fs';
import path from 'node:path';

/** What an opened file must satisfy to be read. */
export interface Confinement {
  /** The storage root as configured (for messages). */
  root: string;
  /** Its real path, symlinks resolved: every file read must lie strictly inside it. */
  realRoot: string;
  /** Whether a file with more than one hard link may be read. */
  allowHardLinks: boolean;
}

/** A file open for reading and proven confined, with its fstat. */
export interface ConfinedFile {
  fd: number;
  info: Stats;
}

/** Why a file was not opened. `symlink`: the file itself is a symlink (the caller may follow it). */
export interface Refusal {
  problem: string;
  symlink?: boolean;
}

/**
 * O_NOFOLLOW: a file that is a symlink is not opened through it. O_NONBLOCK: a FIFO where an
 * image should be is opened at once (and refused as not a regular file) instead of waiting for
 * a writer forever.
 */
const FILE_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);
const DIRECTORY_FLAGS = constants.O_RDONLY | (constants.O_DIRECTORY ?? 0);

/** Directory handles a ConfinedFiles keeps at most (the oldest is closed for a new one). */
const KEPT_DIRECTORIES = 32;

/** Opens files inside one storage root, each proven confined (see the top of this file). */
export class ConfinedFiles {
  /** Directory path → its open handle, proven inside the root when it was opened. */
  private readonly directories = new Map<string, number>();
  private readonly prefix: string;
  private readonly throughDirectory: boolean;

  /**
   * `byPath` takes the portable way where /proc/self/fd exists too (for tests: it is what other
   * systems get).
   */
  constructor(
    readonly confinement: Confinement,
    options: { byPath?: boolean } = {},
  ) {
    const { realRoot } = confinement;
    this.prefix = realRoot.endsWith(path.sep) ? realRoot : `${realRoot}${path.sep}`;
    this.throughDirectory = !options.byPath && procFd();
  }

  /** `file` (an absolute path) open for reading, or why not. */
  open(file: string): ConfinedFile | Refusal {
    const opened = this.throughDirectory ? this.openThroughDirectory(file) : this.openByPath(file);
    if ('problem' in opened) return opened;
    const problem = this.fileProblem(opened.info);
    if (problem) {
      closeSync(opened.fd);
      return { problem };
    }
    return opened;
  }

  /**
   * Closes the directory handles kept: the next file's directory is opened and proven afresh
   * (the caller does so at least once per group of files, and when done).
   */
  forget(): void {
    for (const handle of this.directories.values()) closeSync(handle);
    this.directories.clear();
  }

  /** A real path (canonical: absolute, no symlink, `.` or `..`) lies inside the root. */
  private inside(real: string): boolean {
    return real.length > this.prefix.length && real.startsWith(this.prefix);
  }

  private fileProblem(info: Stats): string | undefined {
    if (!info.isFile()) return 'not a regular file';
    if (info.nlink > 1 && !this.confinement.allowHardLinks) {
      return (
        `has ${info.nlink} hard links, and may be a file from outside the storage root ` +
        `(allowHardLinks reads such files, for storage that links them on purpose)`
      );
    }
    return undefined;
  }

  private openThroughDirectory(file: string): ConfinedFile | Refusal {
    const directory = path.dirname(file);
    const name = path.basename(file);
    let handle = this.directories.get(directory);
    if (handle === undefined) {
      try {
        handle = openSync(directory, DIRECTORY_FLAGS);
      } catch {
        return { problem: 'file not found' };
      }
      let real: string;
      try {
        real = readlinkSync(`/proc/self/fd/${handle}`);
      } catch {
        real = '';
      }
      if (real !== this.confinement.realRoot && !this.inside(real)) {
        closeSync(handle);
        return { problem: this.outside(path.join(real, name)) };
      }
      if (this.directories.size >= KEPT_DIRECTORIES) {
        const [oldest, oldHandle] = this.directories.entries().next().value!;
        this.directories.delete(oldest);
        closeSync(oldHandle);
      }
      this.directories.set(directory, handle);
    }
    return openFile(`/proc/self/fd/${handle}/${name}`);
  }

  private openByPath(file: string): ConfinedFile | Refusal {
    const opened = openFile(file);
    if ('problem' in opened) return opened;
    let real: string | undefined;
    try {
      real = realpathSync.native(file);
      // stat follows the path again: a directory of it swapped for a symlink since realpath
      // leads it to the outside file that was opened. Resolving again after it catches that.
      const now = statSync(real);
      const same = now.dev === opened.info.dev && now.ino === opened.info.ino;
      if (!same || realpathSync.native(file) !== real) real = undefined;
    } catch {
      real = undefined;
    }
    const problem =
      real === undefined
        ? 'was moved or replaced while it was being opened'
        : this.inside(real)
          ? undefined
          : this.outside(real);
    if (problem) {
      closeSync(opened.fd);
      return { problem };
    }
    return opened;
  }

  private outside(real: string): string {
    return `resolves to ${real}, outside the storage root ${this.confinement.root}`;
  }
}

/** Opens a file with FILE_FLAGS, with its fstat. */
function openFile(openPath: string): ConfinedFile | Refusal {
  let fd: number;
  try {
    fd = openSync(openPath, FILE_FLAGS);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ELOOP'
      ? { problem: 'a symlink', symlink: true }
      : { problem: 'file not found' };
  }
  try {
    return { fd, info: fstatSync(fd) };
  } catch {
    closeSync(fd);
    return { problem: 'file not found' };
  }
}

let procFdWorks: boolean | undefined;

/** Whether /proc/self/fd names open files here (Linux, procfs mounted); learnt once. */
function procFd(): boolean {
  if (procFdWorks === undefined) {
    try {
      readlinkSync('/proc/self');
      procFdWorks = true;
    } catch {
      procFdWorks = false;
    }
  }
  return procFdWorks;
}

/** `file` lies strictly inside `directory` (both absolute, normalised). */
export function isInside(directory: string, file: string): boolean {
  const relative = path.relative(directory, file);
  return (
    relative !== '' &&
    relative !== '..' &&
    !relative.startsWith(`..${path.sep}`) &&
    !path.isAbsolute(relative)
  );
}
