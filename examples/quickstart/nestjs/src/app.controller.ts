import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  StreamableFile,
} from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { createReadStream } from 'node:fs';
import path from 'node:path';
import type { Repository } from 'typeorm';
import {
  CrawlJobService,
  ExportJobService,
  ProfileService,
  ProjectService,
  ValidationError,
} from '@pixcrawler/data';
import { Note } from './note.entity';

/*
 * The services validate what they are given and throw domain errors, which the package's
 * DomainErrorFilter answers (400, 403, 404, 409). The caller's id comes from a header here; a
 * real app takes it from its authentication.
 */
@Controller()
export class AppController {
  constructor(
    private readonly profiles: ProfileService,
    private readonly projects: ProjectService,
    private readonly crawlJobs: CrawlJobService,
    private readonly exports: ExportJobService,
    @InjectRepository(Note) private readonly notes: Repository<Note>,
  ) {}

  @Post('profiles')
  createProfile(@Body() body: unknown) {
    return this.profiles.create(body);
  }

  @Post('projects')
  createProject(@Headers('x-user-id') userId: string, @Body() body: unknown) {
    return this.projects.create(userId, body);
  }

  @Post('projects/:id/notes')
  async addNote(
    @Headers('x-user-id') userId: string,
    @Param('id') id: string,
    @Body('body') body: unknown,
  ) {
    const project = await this.projects.get(userId, Number(id)); // NotFoundError unless theirs
    if (typeof body !== 'string') throw new ValidationError({ body: ['body must be a string'] });
    return this.notes.save(this.notes.create({ projectId: project.id, body }));
  }

  @Post('crawl-jobs')
  createCrawlJob(@Headers('x-user-id') userId: string, @Body() body: unknown) {
    return this.crawlJobs.create(userId, body);
  }

  @Post('crawl-jobs/:id/start')
  @HttpCode(200)
  startCrawlJob(@Headers('x-user-id') userId: string, @Param('id') id: string) {
    return this.crawlJobs.start(userId, Number(id));
  }

  /** What the crawler reports: images whose files it stored under IMAGE_DIR. */
  @Post('crawl-jobs/:id/images')
  async addImages(
    @Headers('x-user-id') userId: string,
    @Param('id') id: string,
    @Body() images: unknown,
  ) {
    const job = await this.crawlJobs.get(userId, Number(id));
    return this.crawlJobs.ingestImages(job.id, images);
  }

  @Post('exports')
  requestExport(@Headers('x-user-id') userId: string, @Body() body: unknown) {
    return this.exports.request(userId, body);
  }

  @Get('exports/:id')
  getExport(@Headers('x-user-id') userId: string, @Param('id') id: string) {
    return this.exports.get(userId, Number(id));
  }

  @Get('exports/:id/file')
  async exportFile(@Headers('x-user-id') userId: string, @Param('id') id: string) {
    const { location } = await this.exports.download(userId, Number(id));
    return new StreamableFile(createReadStream(location), {
      disposition: `attachment; filename="${path.basename(location)}"`,
    });
  }
}
