import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

/** Where image files live. Exports read each image's bytes through this. */
export interface ImageStorage {
  /** The image's bytes; MissingImageFileError when there is no file. */
  open(image: { id: number; storageUrl: string | null }): Promise<Readable>;
}

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

/**
 * Files on a local disk: `storage_url` is a `file://` URL, or a relative key (`job-1/42.jpg`)
 * under the root directory. Every file it reads resolves inside the root, after following
 * symlinks: a key that climbs out (`../`), a `file:///etc/passwd` URL and a key that is a
 * symlink to a file outside all fail with a MissingImageFileError naming the image, and not a
 * byte of such a file is read.
 */
export class LocalDirectoryStorage implements ImageStorage {
  readonly root: string;
  private realRoot?: Promise<string>;

  constructor(root: string) {
    this.root = path.resolve(root);
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
    } else {
      resolved = path.resolve(this.root, storageUrl);
    }
    return isInside(this.root, resolved) ? resolved : undefined;
  }

  async open(image: { id: number; storageUrl: string | null }): Promise<Readable> {
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
    const real = await realpath(file).catch(() => undefined);
    if (!real) throw new MissingImageFileError(image.id, file, 'file not found');
    this.realRoot ??= realpath(this.root).catch(() => this.root);
    if (!isInside(await this.realRoot, real)) {
      throw new MissingImageFileError(
        image.id,
        file,
        `resolves to ${real}, outside the storage root ${this.root}`,
      );
    }
    // O_NOFOLLOW: the checked path is opened as checked, not through a symlink put there since.
    const handle = await open(real, constants.O_RDONLY | constants.O_NOFOLLOW).catch(
      () => undefined,
    );
    if (!handle) throw new MissingImageFileError(image.id, file, 'file not found');
    if (!(await handle.stat()).isFile()) {
      await handle.close();
      throw new MissingImageFileError(image.id, file, 'not a regular file');
    }
    return handle.createReadStream();
  }
}

/** `file` lies strictly inside `directory` (both absolute, normalised). */
function isInside(directory: string, file: string): boolean {
  const relative = path.relative(directory, file);
  return (
    relative !== '' &&
    relative !== '..' &&
    !relative.startsWith(`..${path.sep}`) &&
    !path.isAbsolute(relative)
  );
}
