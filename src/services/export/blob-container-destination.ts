import type { BlockBlobClient, ContainerClient } from '@azure/storage-blob';
import { Transform } from 'node:stream';
import { azureBlobSdk } from '../../storage/azure-blob-sdk';
import type { ExportFormat } from '../../entities/value-sets';
import { blobNameProblem } from '../../storage/blob-names';
import {
  EXPORT_CONTENT_TYPES,
  type ExportDestination,
  type ExportUpload,
  type StoredExport,
} from './export-destination';

/** Signs a read-only download URL of the blob, valid until `expiresAt`. */
export type BlobUrlSigner = (blob: BlockBlobClient, expiresAt: Date) => Promise<string>;

export interface BlobContainerDestinationOptions {
  /** Blob name prefix for export files, e.g. `exports/` (default none). */
  prefix?: string;
  /**
   * How download URLs are signed. Default: a service SAS with read permission only, signed with
   * the container client's account key (the client must be built with a
   * StorageSharedKeyCredential or a connection string holding the key). An application that
   * signs in with Entra ID passes a signer using a user delegation key instead.
   */
  signUrl?: BlobUrlSigner;
  /** Bytes per staged block, and blocks uploaded in parallel (default 8 MiB, 4). */
  blockSize?: number;
  concurrency?: number;
}

/**
 * Export files written to an Azure Blob Storage container, streamed: the export's bytes go up as
 * blocks while it is written (no temporary copy on disk) and the blob appears only when the
 * block list is committed at the end. download_url is a read-only SAS URL of the blob whose
 * expiry is the export's expires_at, so the link stops working when the export expires.
 */
export class BlobContainerDestination implements ExportDestination {
  private readonly prefix: string;
  private readonly signUrl: BlobUrlSigner;

  constructor(
    readonly container: ContainerClient,
    private readonly options: BlobContainerDestinationOptions = {},
  ) {
    azureBlobSdk(); // loaded now: a missing SDK is told here, not on the first export
    this.prefix = options.prefix ?? '';
    if (this.prefix !== '') {
      const problem = blobNameProblem(this.prefix.replace(/\/$/, ''));
      if (problem)
        throw new TypeError(`export blob prefix ${JSON.stringify(this.prefix)}: ${problem}`);
    }
    if (options.signUrl) {
      this.signUrl = options.signUrl;
    } else if (container.credential instanceof azureBlobSdk().StorageSharedKeyCredential) {
      this.signUrl = sharedKeySigner;
    } else {
      throw new TypeError(
        'BlobContainerDestination signs download URLs with the account key: build the ContainerClient ' +
          'from a connection string or a StorageSharedKeyCredential, or pass options.signUrl ' +
          '(for example a user delegation SAS signer)',
      );
    }
  }

  locate(fileName: string): string {
    return this.blob(fileName).url;
  }

  async begin(fileName: string, format: ExportFormat): Promise<ExportUpload> {
    const blob = this.blob(fileName);
    const controller = new AbortController();
    let bytes = 0;
    const stream = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        callback(null, chunk);
      },
    });
    const uploaded = blob.uploadStream(
      stream,
      this.options.blockSize ?? 8 * 1024 * 1024,
      this.options.concurrency ?? 4,
      {
        abortSignal: controller.signal,
        blobHTTPHeaders: {
          blobContentType: EXPORT_CONTENT_TYPES[format],
          blobContentDisposition: `attachment; filename="${fileName}"`,
        },
      },
    );
    uploaded.catch((error: unknown) => stream.destroy(error as Error)); // the writer sees it
    return {
      stream,
      commit: async (expiresAt: Date): Promise<StoredExport> => {
        await uploaded;
        return {
          downloadUrl: await this.signUrl(blob, expiresAt),
          location: blob.url,
          fileSize: bytes,
        };
      },
      abort: async () => {
        controller.abort();
        stream.destroy();
        await uploaded.catch(() => undefined);
        // Staged blocks that were never committed are not a blob; Azure discards them.
        await blob.deleteIfExists({ deleteSnapshots: 'include' });
      },
    };
  }

  async remove(fileName: string): Promise<void> {
    await this.blob(fileName).deleteIfExists({ deleteSnapshots: 'include' });
  }

  /** Committed blobs under the prefix (a blob being uploaded is not one until committed). */
  async list(): Promise<string[]> {
    const names: string[] = [];
    for await (const blob of this.container.listBlobsFlat({ prefix: this.prefix })) {
      const name = blob.name.slice(this.prefix.length);
      if (!name.includes('/')) names.push(name);
    }
    return names;
  }

  private blob(fileName: string): BlockBlobClient {
    return this.container.getBlockBlobClient(`${this.prefix}${fileName}`);
  }
}

/** A service SAS: read only, until `expiresAt`, https only unless the endpoint is http (Azurite). */
const sharedKeySigner: BlobUrlSigner = (blob, expiresAt) => {
  const { BlobSASPermissions, SASProtocol } = azureBlobSdk();
  return blob.generateSasUrl({
    permissions: BlobSASPermissions.parse('r'),
    expiresOn: expiresAt,
    protocol: blob.url.startsWith('https:') ? SASProtocol.Https : SASProtocol.HttpsAndHttp,
  });
};
