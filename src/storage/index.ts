export * from './image-storage';
