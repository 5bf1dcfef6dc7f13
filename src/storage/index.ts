export * from './image-storage';
export * from './blob-container-storage';
export { blobNameProblem } from './blob-names';
export { AzureBlobSdkMissingError } from './azure-blob-sdk';
