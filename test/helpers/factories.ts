import type { DataSource } from 'typeorm';
import type { CrawlJob } from '../../src/entities/crawl-job.entity';
import type { Profile } from '../../src/entities/profile.entity';
import type { Project } from '../../src/entities/project.entity';
import type { NewImage } from '../../src/repositories/image.repository';
import { TestFactory } from '../../src/testing/factories';

/**
 * Shorthands over the package's TestFactory for the service and repository tests. (Tests of the
 * database's own rules insert with plain SQL instead: see sql-rows.ts.)
 */

export function makeProfile(dataSource: DataSource, label = 'user'): Promise<Profile> {
  return new TestFactory(dataSource.manager).profile({
    email: `${label}-${Math.random().toString(36).slice(2, 10)}@example.com`,
  });
}

export function makeProject(
  dataSource: DataSource,
  userId: string,
  name = 'project',
): Promise<Project> {
  return new TestFactory(dataSource.manager).project({ userId, name });
}

export function makeCrawlJob(
  dataSource: DataSource,
  projectId: number,
  name = 'crawl',
): Promise<CrawlJob> {
  return new TestFactory(dataSource.manager).crawlJob({ projectId, name, keywords: ['cats'] });
}

/** A user, their project and a crawl job in it. */
export async function makeOwnedCrawlJob(dataSource: DataSource, label = 'owner') {
  const user = await makeProfile(dataSource, label);
  const project = await makeProject(dataSource, user.id);
  const crawlJob = await makeCrawlJob(dataSource, project.id);
  return { user, project, crawlJob };
}

const FORMATS = ['jpeg', 'png', 'webp', 'gif', null] as const;

/**
 * Deterministic varied images: sizes, formats and some NULLs, so every validation rule has
 * images on both sides of it. `storageUrl` is a relative key (`<prefix>/<i>.bin`).
 */
export function generateImages(count: number, prefix = 'img'): NewImage[] {
  return Array.from({ length: count }, (_, i) => ({
    originalUrl: `https://example.com/${prefix}/${i}.jpg`,
    filename: `${prefix}-${i}.jpg`,
    storageUrl: `${prefix}/${i}.bin`,
    width: i % 17 === 0 ? null : 100 + ((i * 37) % 900),
    height: i % 19 === 0 ? null : 80 + ((i * 53) % 700),
    fileSize: i % 23 === 0 ? null : 1000 + ((i * 7919) % 500_000),
    format: FORMATS[i % FORMATS.length],
  }));
}
