import type { ContainerClient } from '@azure/storage-blob';
import { azureBlobSdk } from './azure-blob-sdk';
import { Readable } from 'node:stream';
import {
  MissingImageFileError,
  WHOLE_FILE_LIMIT,
  type ImageReader,
  type ImageStorage,
  type StoredImage,
} from './image-storage';
import { blobNameIn, containerBase } from './blob-names';

export interface BlobContainerStorageOptions {
  /** Downloads an archive export keeps in flight (default 16): each blob is one HTTP request. */
  concurrency?: number;
}

/**
 * Image files in an Azure Blob Storage container. `storage_url` is an https URL of a blob in the
 * container or a blob name relative to it; nothing outside the configured container is ever
 * read: a URL of another account or container, or a name with `..` segments, fails the image
 * (MissingImageFileError naming it) before any request is made.
 *
 * Give it a ContainerClient built the way the application authenticates (connection string,
 * account key, SAS or a TokenCredential); it only reads.
 */
export class BlobContainerStorage implements ImageStorage {
  constructor(
    readonly container: ContainerClient,
    private readonly options: BlobContainerStorageOptions = {},
  ) {
    azureBlobSdk(); // loaded now: a missing SDK is told here, not on the first export
  }

  async open(image: StoredImage): Promise<Readable> {
    const file = await this.download(image, Infinity);
    return 'stream' in file ? file.stream : Readable.from([file.bytes]);
  }

  reader(): ImageReader {
    return {
      concurrency: this.options.concurrency ?? 16,
      read: (image) => this.download(image, WHOLE_FILE_LIMIT),
    };
  }

  /** The blob name of an image, or MissingImageFileError saying why it is not in the container. */
  blobName(image: StoredImage): string {
    if (!image.storageUrl) {
      throw new MissingImageFileError(image.id, '(none)', 'no storage_url recorded');
    }
    const found = blobNameIn(this.container, image.storageUrl);
    if ('problem' in found) {
      throw new MissingImageFileError(image.id, image.storageUrl, found.problem);
    }
    return found.name;
  }

  private async download(
    image: StoredImage,
    wholeUpTo: number,
  ): Promise<{ size: number; bytes: Buffer } | { size: number; stream: Readable }> {
    const name = this.blobName(image);
    const blob = this.container.getBlobClient(name);
    if (!blob.url.startsWith(`${containerBase(this.container).href}/`)) {
      throw new MissingImageFileError(image.id, name, 'not in the storage container');
    }
    let response;
    try {
      response = await blob.download();
    } catch (error) {
      if (error instanceof azureBlobSdk().RestError && error.statusCode === 404) {
        throw new MissingImageFileError(image.id, blob.url, 'blob not found');
      }
      throw error;
    }
    const size = response.contentLength ?? 0;
    const body = response.readableStreamBody as Readable | undefined;
    if (!body) throw new MissingImageFileError(image.id, blob.url, 'blob has no body');
    if (size > wholeUpTo) return { size, stream: body };
    const chunks: Buffer[] = [];
    for await (const chunk of body) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    if (bytes.length !== size) {
      throw new MissingImageFileError(image.id, blob.url, `read ${bytes.length} of ${size} bytes`);
    }
    return { size, bytes };
  }
}
