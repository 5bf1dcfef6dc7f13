import type { DataSource } from 'typeorm';
import { assertUserId, parseInput } from '../dto/parse';
import { KeysetPageDto } from '../dto/pagination.dto';
import type { ActivityLog } from '../entities/activity-log.entity';
import { ActivityLogRepository, type KeysetPage } from '../repositories/activity-log.repository';

const DEFAULT_LIMIT = 20;

/** Reading the audit trail; services write it as part of each change. */
export class ActivityService {
  private readonly logs: ActivityLogRepository;

  constructor(dataSource: DataSource) {
    this.logs = new ActivityLogRepository(dataSource);
  }

  /** Everyone's recent activity (an admin view), newest first. */
  async recent(page: unknown = {}): Promise<KeysetPage<ActivityLog>> {
    const dto = parseInput(KeysetPageDto, page);
    return this.logs.recent({ limit: dto.limit ?? DEFAULT_LIMIT, cursor: dto.cursor });
  }

  /** The user's own recent activity, newest first. */
  async recentForUser(userId: string, page: unknown = {}): Promise<KeysetPage<ActivityLog>> {
    assertUserId(userId);
    const dto = parseInput(KeysetPageDto, page);
    return this.logs.recentByUser(userId, {
      limit: dto.limit ?? DEFAULT_LIMIT,
      cursor: dto.cursor,
    });
  }
}
