import type { DataSource } from 'typeorm';
import { CreateProfileDto } from '../dto/create-profile.dto';
import { assertUserId, parseInput } from '../dto/parse';
import type { Profile } from '../entities/profile.entity';
import { PROFILE_ROLES, type ProfileRole } from '../entities/value-sets';
import { ForbiddenError, NotFoundError, ValidationError } from '../errors';
import { ProfileRepository } from '../repositories/profile.repository';
import { inTransaction, translated } from './transaction';

/** Profiles mirror the auth provider's users; the application creates one on first sign-in. */
export class ProfileService {
  private readonly profiles: ProfileRepository;

  constructor(private readonly dataSource: DataSource) {
    this.profiles = new ProfileRepository(dataSource);
  }

  /**
   * Sign-up: a new profile, always with role 'user' (the input has no role; one given is refused
   * as an unknown field). The email is stored lower-case. ConflictError on `email` when the
   * address is taken, in any letter case.
   */
  async create(input: unknown): Promise<Profile> {
    const dto = parseInput(CreateProfileDto, input);
    return translated(() =>
      this.profiles.insert({ id: dto.id, email: dto.email, fullName: dto.fullName ?? null }),
    );
  }

  async get(id: string): Promise<Profile> {
    assertUserId(id);
    const profile = await this.profiles.findById(id);
    if (!profile) throw new NotFoundError('profile', id);
    return profile;
  }

  /**
   * The one way to change a role: an explicit admin operation. ForbiddenError unless `adminId`
   * is an admin's profile (read under a lock, so a demotion racing with this call is seen);
   * NotFoundError when the profile to change does not exist.
   */
  async setRole(adminId: string, profileId: string, role: unknown): Promise<Profile> {
    assertUserId(adminId);
    assertUserId(profileId);
    if (typeof role !== 'string' || !(PROFILE_ROLES as readonly string[]).includes(role)) {
      throw new ValidationError({ role: [`role must be one of ${PROFILE_ROLES.join(', ')}`] });
    }
    return inTransaction(this.dataSource, async (m) => {
      const admin = await this.profiles.findById(adminId, m, { lock: true });
      if (admin?.role !== 'admin') {
        throw new ForbiddenError('only an admin may change a role', adminId);
      }
      const changed = await this.profiles.setRole(profileId, role as ProfileRole, m);
      if (!changed) throw new NotFoundError('profile', profileId);
      return changed;
    });
  }
}
