import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
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
 * under the root directory. Keys cannot climb out of the root (`../`).
 */
export class LocalDirectoryStorage implements ImageStorage {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** The file path for a storage_url, or undefined when it is not on this storage. */
  resolve(storageUrl: string): string | undefined {
    if (storageUrl.startsWith('file://')) return fileURLToPath(storageUrl);
    if (/^[a-z][a-z0-9+.-]*:/i.test(storageUrl)) return undefined; // http://, s3://, …
    const resolved = path.resolve(this.root, storageUrl);
    return resolved.startsWith(this.root + path.sep) ? resolved : undefined;
  }

  async open(image: { id: number; storageUrl: string | null }): Promise<Readable> {
    if (!image.storageUrl) {
      throw new MissingImageFileError(image.id, '(none)', 'no storage_url recorded');
    }
    const file = this.resolve(image.storageUrl);
    if (!file) {
      throw new MissingImageFileError(image.id, image.storageUrl, 'not on local storage');
    }
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) throw new MissingImageFileError(image.id, file, 'file not found');
    return createReadStream(file);
  }
}
