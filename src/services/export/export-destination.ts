import type { Writable } from 'node:stream';
import type { ExportFormat } from '../../entities/value-sets';

/** A finished export file where its destination keeps it. */
export interface StoredExport {
  /** What download_url records: where a user fetches the file until it expires. */
  downloadUrl: string;
  /** The destination's own name for it: a local path, or the blob's URL (without a SAS). */
  location: string;
  /** Bytes written. */
  fileSize: number;
}

/**
 * One export file being written. Nothing is visible under the file's name before `commit`;
 * `abort` leaves nothing behind.
 */
export interface ExportUpload {
  /** Write the export's bytes here (mind backpressure), then end it. */
  readonly stream: Writable;
  /**
   * True when `stream` is done with a chunk once that chunk's write callback has run, as a file
   * stream is (it keeps no reference after writing it): archive exports then hand it their
   * readers' buffers without copying them, and reuse them once written. Leave it unset for a
   * stream that may hold on to chunks (one that passes them on, or batches them).
   */
  readonly releasesChunks?: boolean;
  /** After the stream ended: makes the file visible, downloadable until `expiresAt`. */
  commit(expiresAt: Date): Promise<StoredExport>;
  /** Throws away what was written; safe to call at any point, also after commit. */
  abort(): Promise<void>;
}

/** Where export files are written, kept and purged: a local directory or a blob container. */
export interface ExportDestination {
  begin(fileName: string, format: ExportFormat): Promise<ExportUpload>;
  /** Where a file of this name is (or would be) kept: a path, or a URL without a SAS. */
  locate(fileName: string): string;
  /** Deletes an export file (or a `.part` one being written); a file already gone is fine. */
  remove(fileName: string): Promise<void>;
  /** The names of the files there (`.part` for local files still being written). */
  list(): Promise<string[]>;
}

/** Media types of the export formats, for destinations that record one. */
export const EXPORT_CONTENT_TYPES: Record<ExportFormat, string> = {
  csv: 'text/csv; charset=utf-8',
  jsonl: 'application/jsonl; charset=utf-8',
  zip: 'application/zip',
  tar: 'application/x-tar',
};
