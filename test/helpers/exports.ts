import type { ExportFormat } from '../../src/entities/value-sets';
import type { ExportJob } from '../../src/entities/export-job.entity';
import type { ExportJobService, ExportProgress } from '../../src/services/export-job.service';

/**
 * Requests an export of a crawl job as its owner and runs it to its end: the job as it ended
 * (completed or failed; the tests look at which).
 */
export async function runExport(
  service: ExportJobService,
  owner: { userId: string; crawlJobId: number },
  format: ExportFormat,
  options: {
    name?: string;
    exportOptions?: Record<string, unknown>;
    onProgress?: (progress: ExportProgress) => void;
  } = {},
): Promise<ExportJob> {
  const requested = await service.request(owner.userId, {
    crawlJobId: owner.crawlJobId,
    name: options.name ?? `${format} export`,
    format,
    ...(options.exportOptions ? { options: options.exportOptions } : {}),
  });
  return service.run(requested.id, options.onProgress);
}
