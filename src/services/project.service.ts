import type { DataSource } from 'typeorm';
import { CreateProjectDto } from '../dto/create-project.dto';
import { assertId, assertUserId, parseInput } from '../dto/parse';
import { PageDto } from '../dto/pagination.dto';
import type { Project } from '../entities/project.entity';
import { ActivityLogRepository } from '../repositories/activity-log.repository';
import { ProjectRepository, type ProjectTransition } from '../repositories/project.repository';
import { inTransaction } from './transaction';

const DEFAULT_LIMIT = 20;

export class ProjectService {
  private readonly projects: ProjectRepository;
  private readonly activity: ActivityLogRepository;

  constructor(private readonly dataSource: DataSource) {
    this.projects = new ProjectRepository(dataSource);
    this.activity = new ActivityLogRepository(dataSource);
  }

  async create(userId: string, input: unknown): Promise<Project> {
    assertUserId(userId);
    const dto = parseInput(CreateProjectDto, input);
    return inTransaction(this.dataSource, async (m) => {
      const project = await this.projects.insert(
        { userId, name: dto.name, description: dto.description ?? null },
        m,
      );
      await this.activity.record(
        {
          userId,
          action: 'project.created',
          resourceType: 'project',
          resourceId: project.id,
          metadata: { name: project.name },
        },
        m,
      );
      return project;
    });
  }

  /** NotFoundError for a missing, deleted or another user's project alike. */
  async get(userId: string, id: number): Promise<Project> {
    assertUserId(userId);
    assertId('project', id);
    return this.projects.getOwned(userId, id);
  }

  /** The user's projects, newest first. */
  async list(userId: string, page: unknown = {}): Promise<Project[]> {
    assertUserId(userId);
    const dto = parseInput(PageDto, page);
    return this.projects.listByUser(userId, {
      limit: dto.limit ?? DEFAULT_LIMIT,
      offset: dto.offset ?? 0,
    });
  }

  archive(userId: string, id: number): Promise<Project> {
    return this.change(userId, id, 'archive', 'project.archived');
  }

  /** Soft delete: status 'deleted'; the project and its jobs disappear from every lookup. */
  delete(userId: string, id: number): Promise<Project> {
    return this.change(userId, id, 'delete', 'project.deleted');
  }

  private async change(
    userId: string,
    id: number,
    transition: ProjectTransition,
    action: 'project.archived' | 'project.deleted',
  ): Promise<Project> {
    assertUserId(userId);
    assertId('project', id);
    return inTransaction(this.dataSource, async (m) => {
      const project = await this.projects.transition(userId, id, transition, m);
      await this.activity.record({ userId, action, resourceType: 'project', resourceId: id }, m);
      return project;
    });
  }
}
