import type { EntityManager } from 'typeorm';
import { Profile } from '../entities/profile.entity';
import type { ProfileRole } from '../entities/value-sets';
import { BaseRepository } from './base.repository';

export interface NewProfile {
  id: string;
  email: string;
  fullName?: string | null;
  /** Default 'user'. Sign-up never passes one; the testing kit and the demo do. */
  role?: ProfileRole;
}

export class ProfileRepository extends BaseRepository<Profile> {
  protected readonly entity = Profile;

  async insert(profile: NewProfile, manager?: EntityManager): Promise<Profile> {
    return this.insertedRow(
      `INSERT INTO profiles (id, email, full_name, role)
       VALUES ($1, $2, $3, COALESCE($4, 'user')) RETURNING *`,
      [profile.id, profile.email, profile.fullName ?? null, profile.role ?? null],
      manager,
    );
  }

  /**
   * Read on a replica; with `lock` (FOR SHARE, in the caller's transaction) on the primary,
   * where the lock means something.
   */
  async findById(
    id: string,
    manager?: EntityManager,
    options: { lock?: boolean } = {},
  ): Promise<Profile | null> {
    if (options.lock) {
      return this.row(`SELECT * FROM profiles WHERE id = $1 FOR SHARE`, [id], manager);
    }
    return this.replicaRow(`SELECT * FROM profiles WHERE id = $1`, [id], manager);
  }

  /** The changed profile, or null when there is none with that id. */
  async setRole(id: string, role: ProfileRole, manager?: EntityManager): Promise<Profile | null> {
    return this.row(
      `UPDATE profiles SET role = $2, updated_at = now() WHERE id = $1 RETURNING *`,
      [id, role],
      manager,
    );
  }
}
