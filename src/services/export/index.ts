export * from './export-destination';
export * from './local-directory-destination';
export * from './blob-container-destination';
export * from './export-writer';
export * from './manifest';
