import { Body, Controller, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import {
  CrawlJobService,
  ExportJobService,
  ProfileService,
  ProjectService,
} from '@pixcrawler/data';
import { UserId } from './user-id.decorator';

/*
 * Thin controllers: the services validate their input (bodies are passed as they came) and throw
 * domain errors, which the package's DomainErrorFilter turns into status codes. Path ids become numbers; the
 * services answer 404 for anything that cannot be an id.
 */

@Controller('profiles')
export class ProfilesController {
  constructor(private readonly profiles: ProfileService) {}

  @Post()
  create(@Body() body: unknown) {
    return this.profiles.create(body);
  }

  /** The one way to change a role: an admin (the x-user-id caller) sets another profile's. */
  @Put(':id/role')
  setRole(@UserId() adminId: string, @Param('id') id: string, @Body() body: unknown) {
    const role =
      typeof body === 'object' && body !== null ? (body as { role?: unknown }).role : undefined;
    return this.profiles.setRole(adminId, id, role);
  }
}

@Controller('projects')
export class ProjectsController {
  constructor(private readonly projects: ProjectService) {}

  @Post()
  create(@UserId() userId: string, @Body() body: unknown) {
    return this.projects.create(userId, body);
  }

  @Get(':id')
  get(@UserId() userId: string, @Param('id') id: string) {
    return this.projects.get(userId, Number(id));
  }
}

@Controller('crawl-jobs')
export class CrawlJobsController {
  constructor(private readonly crawlJobs: CrawlJobService) {}

  @Post()
  create(@UserId() userId: string, @Body() body: unknown) {
    return this.crawlJobs.create(userId, body);
  }
}

@Controller('exports')
export class ExportsController {
  constructor(private readonly exports: ExportJobService) {}

  @Post()
  request(@UserId() userId: string, @Body() body: unknown) {
    return this.exports.request(userId, body);
  }

  /** `?limit=&beforeId=`: query text becomes numbers (NaN is reported by the page DTO). */
  @Get()
  list(@UserId() userId: string, @Query() query: Record<string, unknown>) {
    const page = { ...query };
    for (const name of ['limit', 'beforeId']) {
      if (typeof page[name] === 'string') page[name] = Number(page[name]);
    }
    return this.exports.listMine(userId, page);
  }

  @Get(':id')
  get(@UserId() userId: string, @Param('id') id: string) {
    return this.exports.get(userId, Number(id));
  }

  @Post(':id/cancel')
  @HttpCode(200)
  cancel(@UserId() userId: string, @Param('id') id: string) {
    return this.exports.cancel(userId, Number(id));
  }

  @Get(':id/download')
  async download(@UserId() userId: string, @Param('id') id: string) {
    const { downloadUrl, fileSize, expiresAt } = await this.exports.download(userId, Number(id));
    return { downloadUrl, fileSize, expiresAt };
  }
}
