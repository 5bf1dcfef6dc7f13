import type { ExportJob } from '../../entities/export-job.entity';
import type { Image } from '../../entities/image.entity';
import { MANIFEST_COLUMNS } from '../../repositories/manifest-sql';

export { MANIFEST_COLUMNS } from '../../repositories/manifest-sql';

export type ManifestRow = Record<(typeof MANIFEST_COLUMNS)[number], string | number | null>;

/** One image as a manifest row (what a jsonl line holds). */
export function manifestRow(image: Image): ManifestRow {
  return {
    id: image.id,
    crawl_job_id: image.crawlJobId,
    original_url: image.originalUrl,
    filename: image.filename,
    storage_url: image.storageUrl,
    width: image.width,
    height: image.height,
    file_size: image.fileSize,
    format: image.format,
  };
}

/** Name of the manifest inside zip and tar exports. */
export const ARCHIVE_MANIFEST = 'manifest.jsonl';

/** Where an image's file goes inside a zip or tar export. */
export function archiveEntryName(image: Pick<Image, 'id' | 'filename'>): string {
  return `images/${image.id}-${image.filename.replace(/[/\\]/g, '_')}`;
}

export function exportFileName(job: Pick<ExportJob, 'id' | 'format'>): string {
  return `export-${job.id}.${job.format}`;
}
