import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { CopyRow } from '../../src/testing/legacy-builder';
import { LEGACY_TABLES } from '../../src/upgrade/legacy-schema';
import { CrawlJobRepository } from '../../src/repositories/crawl-job.repository';
import { ImageRepository, type NewImage } from '../../src/repositories/image.repository';
import { ProfileRepository } from '../../src/repositories/profile.repository';
import { ProjectRepository } from '../../src/repositories/project.repository';
import { progressBar } from './context';

/** Image n as the crawler would hand it over; every benchmark writes the same shape. */
export function newImage(n: number): NewImage {
  const format = ['jpg', 'png', 'webp'][n % 3];
  return {
    originalUrl: `https://images.example.org/b/${n}.${format}`,
    filename: `img_${n}.${format}`,
    storageUrl: `s3://pixcrawler/b/${n}.${format}`,
    width: 640 + (n % 7) * 64,
    height: 480,
    fileSize: 50_000 + (n % 1000) * 97,
    format,
  };
}

export const newImages = (start: number, count: number): NewImage[] =>
  Array.from({ length: count }, (_, i) => newImage(start + i));

/** The images table's columns without its serial id (the database numbers the rows). */
export const IMAGE_COPY_COLUMNS = LEGACY_TABLES.find((table) => table.name === 'images')!
  .columns.filter((column) => !column.serial)
  .map((column) => column.name);

/** The same images as rows for copyRows (COPY FROM STDIN), in IMAGE_COPY_COLUMNS order. */
export function* imageCopyRows(
  crawlJobId: number,
  start: number,
  count: number,
): Generator<CopyRow> {
  for (let n = start; n < start + count; n++) {
    const i = newImage(n);
    yield [
      crawlJobId,
      i.originalUrl,
      i.filename,
      i.storageUrl!,
      i.width!,
      i.height!,
      i.fileSize!,
      i.format!,
    ];
  }
}

/** A profile owning one project with `count` crawl jobs, created through the repositories. */
export async function crawlJobsOfOneUser(
  dataSource: DataSource,
  count: number,
): Promise<{ userId: string; crawlJobIds: number[] }> {
  const userId = randomUUID();
  await new ProfileRepository(dataSource).insert({
    id: userId,
    email: `${userId}@bench.example.com`,
  });
  const project = await new ProjectRepository(dataSource).insert({ userId, name: 'bench' });
  const jobs = new CrawlJobRepository(dataSource);
  const crawlJobIds: number[] = [];
  for (let i = 0; i < count; i++) {
    crawlJobIds.push(
      (await jobs.insert({ projectId: project.id, name: `bench ${i}`, keywords: ['bench'] })).id,
    );
  }
  return { userId, crawlJobIds };
}

/**
 * Loads `count` images into a crawl job through ImageRepository.ingest, `batch` rows per
 * statement, with a progress bar; returns the milliseconds spent in ingest.
 */
export async function ingestImages(
  dataSource: DataSource,
  crawlJobId: number,
  count: number,
  { batch = 10_000, label = 'ingesting images', start = 0 } = {},
): Promise<number> {
  const images = new ImageRepository(dataSource);
  const bar = progressBar(label);
  bar.start(count, 0, { unit: 'rows' });
  let spent = 0;
  try {
    for (let done = 0; done < count; done += batch) {
      const rows = newImages(start + done, Math.min(batch, count - done));
      const t = performance.now();
      await images.ingest(crawlJobId, rows);
      spent += performance.now() - t;
      bar.update(done + rows.length);
    }
  } finally {
    bar.stop();
  }
  return spent;
}
