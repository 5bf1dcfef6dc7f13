import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import type { CrawlJob } from '../../src/entities/crawl-job.entity';
import type { Profile } from '../../src/entities/profile.entity';
import type { Project } from '../../src/entities/project.entity';
import { CrawlJobRepository } from '../../src/repositories/crawl-job.repository';
import type { NewImage } from '../../src/repositories/image.repository';
import { ProfileRepository } from '../../src/repositories/profile.repository';
import { ProjectRepository } from '../../src/repositories/project.repository';

let sequence = 0;

export async function makeProfile(dataSource: DataSource, label = 'user'): Promise<Profile> {
  sequence += 1;
  return new ProfileRepository(dataSource).insert({
    id: randomUUID(),
    email: `${label}-${sequence}-${randomUUID().slice(0, 8)}@example.com`,
  });
}

export async function makeProject(
  dataSource: DataSource,
  userId: string,
  name = 'project',
): Promise<Project> {
  return new ProjectRepository(dataSource).insert({ userId, name });
}

export async function makeCrawlJob(
  dataSource: DataSource,
  projectId: number,
  name = 'crawl',
): Promise<CrawlJob> {
  return new CrawlJobRepository(dataSource).insert({ projectId, name, keywords: ['cats'] });
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
