import type { DataSource } from 'typeorm';
import { CreateProfileDto } from '../dto/create-profile.dto';
import { assertUserId, parseInput } from '../dto/parse';
import type { Profile } from '../entities/profile.entity';
import { NotFoundError } from '../errors';
import { ProfileRepository } from '../repositories/profile.repository';
import { translated } from './transaction';

/** Profiles mirror the auth provider's users; the application creates one on first sign-in. */
export class ProfileService {
  private readonly profiles: ProfileRepository;

  constructor(dataSource: DataSource) {
    this.profiles = new ProfileRepository(dataSource);
  }

  /** ConflictError on `email` when the address is taken. */
  async create(input: unknown): Promise<Profile> {
    const dto = parseInput(CreateProfileDto, input);
    return translated(() =>
      this.profiles.insert({
        id: dto.id,
        email: dto.email,
        fullName: dto.fullName ?? null,
        role: dto.role,
      }),
    );
  }

  async get(id: string): Promise<Profile> {
    assertUserId(id);
    const profile = await this.profiles.findById(id);
    if (!profile) throw new NotFoundError('profile', id);
    return profile;
  }
}
