import type { EntityManager } from 'typeorm';
import { Profile } from '../entities/profile.entity';
import type { ProfileRole } from '../entities/value-sets';
import { BaseRepository } from './base.repository';

export interface NewProfile {
  id: string;
  email: string;
  fullName?: string | null;
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

  /** Read on a replica. */
  async findById(id: string, manager?: EntityManager): Promise<Profile | null> {
    return this.replicaRow(`SELECT * FROM profiles WHERE id = $1`, [id], manager);
  }
}
