import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { randomUUID } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runPendingMigrations } from '../../migrator/migrator';
import { EXPORT_FORMATS, type ExportFormat } from '../../entities/value-sets';
import type { NewImage } from '../../repositories/image.repository';
import { CrawlJobService } from '../../services/crawl-job.service';
import { ExportJobService } from '../../services/export-job.service';
import { LocalDirectoryStorage } from '../../storage/image-storage';
import { ProfileService } from '../../services/profile.service';
import { ProjectService } from '../../services/project.service';
import { ValidationJobService } from '../../services/validation-job.service';
import { ExitCode, outcome, say } from '../output';
import { action, OperatorError, withSession } from '../session';

const FORMATS = ['jpeg', 'png', 'webp', 'gif'] as const;
const INGEST_BATCH = 1000;

/** A deterministic pseudo-random crawl result: sizes and formats on both sides of the rules. */
function demoImage(crawlJobId: number, i: number): NewImage {
  return {
    originalUrl: `https://images.example.com/demo/${crawlJobId}/${i}.jpg`,
    filename: `image-${i}.${FORMATS[i % FORMATS.length]}`,
    storageUrl: `crawl-${crawlJobId}/${i}.bin`,
    width: 120 + ((i * 7919) % 1800),
    height: 90 + ((i * 104729) % 1200),
    fileSize: 2_000 + ((i * 15485863) % 3_000_000),
    format: FORMATS[i % FORMATS.length],
  };
}

function bar(label: string): SingleBar {
  return new SingleBar(
    { format: `  ${label.padEnd(10)} [{bar}] {percentage}% | {value}/{total}`, hideCursor: true },
    Presets.shades_classic,
  );
}

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description(
      'run the whole workflow on the database: a profile, a project, a crawl job with generated ' +
        'images (and small files), a validation job and an export job, to completion',
    )
    .option('--images <count>', 'how many images the crawl job collects', '3000')
    .option('--format <format>', `export format: ${EXPORT_FORMATS.join(', ')}`, 'zip')
    .option('--dir <path>', 'where image files and the export go', path.join('.pixcrawler', 'demo'))
    .action(
      action(async (options: { images: string; format: string; dir: string }) => {
        const count = Number(options.images);
        if (!Number.isInteger(count) || count < 1 || count > 1_000_000) {
          throw new OperatorError(
            `--images must be a whole number from 1 to 1000000, got "${options.images}"`,
            ExitCode.usage,
          );
        }
        if (!(EXPORT_FORMATS as readonly string[]).includes(options.format)) {
          throw new OperatorError(
            `--format must be one of ${EXPORT_FORMATS.join(', ')}, got "${options.format}"`,
            ExitCode.usage,
          );
        }
        const format = options.format as ExportFormat;
        const root = path.resolve(options.dir);
        const storageDir = path.join(root, 'storage');
        const outputDir = path.join(root, 'exports');

        return withSession(async ({ dataSource }) => {
          const applied = await runPendingMigrations(dataSource);
          if (applied.length) say(`Applied ${applied.length} pending migration(s) first.`);

          const user = await new ProfileService(dataSource).create({
            id: randomUUID(),
            email: `demo-${randomUUID().slice(0, 8)}@example.com`,
            fullName: 'Demo User',
          });
          const project = await new ProjectService(dataSource).create(user.id, {
            name: 'Demo: birds of Europe',
            description: 'Created by pixcrawler-db demo',
          });
          const crawlJobs = new CrawlJobService(dataSource);
          const crawlJob = await crawlJobs.create(user.id, {
            projectId: project.id,
            name: 'European songbirds',
            keywords: ['robin', 'blackbird', 'wren'],
            maxImages: count,
          });
          say(`\nProfile ${user.email} · project ${project.id} · crawl job ${crawlJob.id}`);
          await crawlJobs.start(user.id, crawlJob.id);

          // The "crawler": files on disk, rows through the bulk ingest, chunk reports.
          const crawlBar = bar('crawl');
          crawlBar.start(count, 0);
          await mkdir(path.join(storageDir, `crawl-${crawlJob.id}`), { recursive: true });
          for (let start = 0; start < count; start += INGEST_BATCH) {
            const images = Array.from({ length: Math.min(INGEST_BATCH, count - start) }, (_, k) =>
              demoImage(crawlJob.id, start + k),
            );
            await Promise.all(
              images.map((image, k) =>
                writeFile(path.join(storageDir, image.storageUrl!), `demo image ${start + k}\n`),
              ),
            );
            await crawlJobs.recordChunkProgress(crawlJob.id, { startedChunks: 1 });
            await crawlJobs.ingestImages(crawlJob.id, images);
            const done = start + images.length;
            await crawlJobs.recordChunkProgress(crawlJob.id, {
              completedChunks: 1,
              progress: Math.floor((done * 100) / count),
            });
            crawlBar.update(done);
          }
          crawlBar.stop();
          await crawlJobs.complete(crawlJob.id);

          const validations = new ValidationJobService(dataSource, { batchSize: 500 });
          const validation = await validations.request(user.id, {
            crawlJobId: crawlJob.id,
            name: 'Usable for training',
            rules: {
              minWidth: 400,
              minHeight: 300,
              maxFileSize: 2_500_000,
              allowedFormats: ['jpeg', 'png', 'webp'],
            },
          });
          const validationBar = bar('validate');
          validationBar.start(count, 0);
          const validated = await validations.run(validation.id, (p) => {
            validationBar.update(p.validatedImages);
          });
          validationBar.stop();

          const exportsService = new ExportJobService(dataSource, {
            outputDir,
            storage: new LocalDirectoryStorage(storageDir),
            batchSize: 500,
          });
          const exportJob = await exportsService.request(user.id, {
            crawlJobId: crawlJob.id,
            name: 'Training set',
            format,
            options: { onlyValid: true, expiresInHours: 24 },
          });
          const exportBar = bar('export');
          exportBar.start(Math.max(validated.validatedImages - validated.invalidImages, 1), 0);
          const exported = await exportsService.run(exportJob.id, (p) => {
            exportBar.setTotal(Math.max(p.totalImages, 1));
            exportBar.update(p.exportedImages);
          });
          exportBar.stop();

          const finished = await crawlJobs.get(user.id, crawlJob.id);
          say('\nResults');
          say(
            `  crawl job ${finished.id}: ${finished.status}, ${finished.totalImages} images, ` +
              `${finished.completedChunks}/${finished.totalChunks} chunks, ${finished.validImages} valid`,
          );
          say(
            `  validation job ${validated.id}: ${validated.status}, ${validated.validatedImages} checked, ` +
              `${validated.invalidImages} invalid (rules ${JSON.stringify(validated.validationRules)})`,
          );
          say(
            `  export job ${exported.id}: ${exported.status}, ${exported.exportedImages} images as ${exported.format}, ` +
              `${exported.fileSize ?? 0} bytes, expires ${exported.expiresAt?.toISOString() ?? '-'}`,
          );
          if (exported.status !== 'completed') {
            throw new OperatorError(
              `The export did not complete: ${exported.errorMessage ?? exported.status}`,
            );
          }
          say(`\nExport file: ${exportsService.filePath(exported)}`);
          say(`Download URL: ${exported.downloadUrl}`);
          return outcome(ExitCode.ok, {
            crawlJob: finished,
            validationJob: validated,
            exportJob: exported,
            exportFile: exportsService.filePath(exported),
          });
        });
      }),
    );
}
