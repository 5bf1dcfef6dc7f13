import type { EntityManager } from 'typeorm';
import { Profile } from '../entities/profile.entity';
import type { ProfileRole } from '../entities/value-sets';
import { BaseRepository } from './base.repository';
import { hydrate, queryRows } from './sql';

export interface NewProfile {
  id: string;
  email: string;
  fullName?: string | null;
  role?: ProfileRole;
}

export class ProfileRepository extends BaseRepository {
  async insert(profile: NewProfile, manager?: EntityManager): Promise<Profile> {
    const m = this.manager(manager);
    const [row] = await queryRows(
      m,
      `INSERT INTO profiles (id, email, full_name, role)
       VALUES ($1, $2, $3, COALESCE($4, 'user')) RETURNING *`,
      [profile.id, profile.email, profile.fullName ?? null, profile.role ?? null],
    );
    return hydrate(m, Profile, row);
  }

  async findById(id: string, manager?: EntityManager): Promise<Profile | null> {
    return this.manager(manager).findOne(Profile, { where: { id } });
  }
}
