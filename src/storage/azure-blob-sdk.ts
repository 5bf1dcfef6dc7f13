/**
 * @azure/storage-blob (some 30 MB and 200 modules) is an optional peer dependency: an application
 * that keeps its images on local disk never loads it. The blob storage and destination load it
 * here, when first used; the package's own modules only name its types.
 */
type AzureBlobSdk = typeof import('@azure/storage-blob');

export class AzureBlobSdkMissingError extends Error {
  constructor() {
    super(
      "Azure Blob storage needs the optional package '@azure/storage-blob', which is not " +
        'installed: npm install @azure/storage-blob',
    );
    this.name = 'AzureBlobSdkMissingError';
  }
}

let sdk: AzureBlobSdk | undefined;

/** The Azure Blob SDK, loaded on first use; AzureBlobSdkMissingError when it is not installed. */
export function azureBlobSdk(): AzureBlobSdk {
  if (!sdk) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      sdk = require('@azure/storage-blob') as AzureBlobSdk;
    } catch (error) {
      const missing =
        (error as NodeJS.ErrnoException).code === 'MODULE_NOT_FOUND' &&
        String((error as Error).message).includes("'@azure/storage-blob'");
      if (missing) throw new AzureBlobSdkMissingError();
      throw error;
    }
  }
  return sdk;
}
