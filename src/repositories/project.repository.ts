import type { EntityManager } from 'typeorm';
import { Project } from '../entities/project.entity';
import type { ProjectStatus } from '../entities/value-sets';
import { IllegalTransitionError, NotFoundError } from '../errors';
import { BaseRepository } from './base.repository';

export interface OffsetQuery {
  limit: number;
  offset: number;
}

/**
 * Project status changes, defined once: archive an active project, delete (soft: status
 * 'deleted') an active or archived one. Deleted projects are invisible: every lookup treats
 * them as missing.
 */
export const PROJECT_TRANSITIONS = {
  archive: { from: ['active'], to: 'archived' },
  delete: { from: ['active', 'archived'], to: 'deleted' },
} as const satisfies Record<string, { from: readonly ProjectStatus[]; to: ProjectStatus }>;
export type ProjectTransition = keyof typeof PROJECT_TRANSITIONS;

export class ProjectRepository extends BaseRepository<Project> {
  protected readonly entity = Project;

  async insert(
    project: { userId: string; name: string; description?: string | null },
    manager?: EntityManager,
  ): Promise<Project> {
    return this.insertedRow(
      `INSERT INTO projects (user_id, name, description) VALUES ($1, $2, $3) RETURNING *`,
      [project.userId, project.name, project.description ?? null],
      manager,
    );
  }

  /**
   * The project if it exists, is not deleted and belongs to the user; otherwise null. Read on a
   * replica unless the caller's transaction says otherwise.
   */
  async findOwned(userId: string, id: number, manager?: EntityManager): Promise<Project | null> {
    return this.replicaRow(
      `SELECT * FROM projects WHERE id = $1 AND user_id = $2 AND status <> 'deleted'`,
      [id, userId],
      manager,
    );
  }

  async getOwned(userId: string, id: number, manager?: EntityManager): Promise<Project> {
    const project = await this.findOwned(userId, id, manager);
    if (!project) throw new NotFoundError('project', id);
    return project;
  }

  /** A user's projects (not deleted), newest first (ix_project_user_id). Read on a replica. */
  async listByUser(
    userId: string,
    { limit, offset }: OffsetQuery,
    manager?: EntityManager,
  ): Promise<Project[]> {
    return this.replicaRows(
      `SELECT * FROM projects WHERE user_id = $1 AND status <> 'deleted'
        ORDER BY created_at DESC, id DESC LIMIT $2 OFFSET $3`,
      [userId, limit, offset],
      manager,
    );
  }

  /** One conditional UPDATE; NotFound for missing, foreign or deleted projects. */
  async transition(
    userId: string,
    id: number,
    transition: ProjectTransition,
    manager?: EntityManager,
  ): Promise<Project> {
    const { from, to } = PROJECT_TRANSITIONS[transition];
    const moved = await this.row(
      `UPDATE projects SET status = $3, updated_at = now()
        WHERE id = $1 AND user_id = $2 AND status = ANY($4::text[]) RETURNING *`,
      [id, userId, to, from],
      manager,
    );
    if (moved) return moved;
    // Why it did not move, read where the UPDATE ran (the primary), never on a replica.
    const current = await this.row(
      `SELECT * FROM projects WHERE id = $1 AND user_id = $2 AND status <> 'deleted'`,
      [id, userId],
      manager,
    );
    if (!current) throw new NotFoundError('project', id);
    throw new IllegalTransitionError('project', id, current.status, transition);
  }
}
