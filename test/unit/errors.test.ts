import {
  ConflictError,
  fieldOfConstraint,
  translateDatabaseError,
  ValidationError,
} from '../../src/errors';

describe('database error translation', () => {
  it('names the field from the constraint name and table', () => {
    expect(fieldOfConstraint('ix_profiles_email', 'profiles')).toBe('email');
    expect(fieldOfConstraint('fk_images_crawl_job_id', 'images')).toBe('crawlJobId');
    expect(fieldOfConstraint('ck_crawl_jobs_active_chunks', 'crawl_jobs')).toBe('activeChunks');
  });

  it('maps unique, foreign key and check violations to domain errors; leaves other errors alone', () => {
    const unique = translateDatabaseError({
      code: '23505',
      constraint: 'ix_profiles_email',
      table: 'profiles',
    });
    expect(unique).toBeInstanceOf(ConflictError);
    expect(unique).toMatchObject({ field: 'email' });
    const fk = translateDatabaseError({
      driverError: { code: '23503', constraint: 'fk_images_crawl_job_id', table: 'images' },
    });
    expect(fk).toBeInstanceOf(ValidationError);
    expect(Object.keys((fk as ValidationError).fields)).toEqual(['crawlJobId']);
    const check = translateDatabaseError({
      code: '23514',
      constraint: 'ck_images_width',
      table: 'images',
    });
    expect((check as ValidationError).fields).toEqual({ width: ['violates ck_images_width'] });
    const other = { code: '57014' };
    expect(translateDatabaseError(other)).toBe(other);
  });
});
