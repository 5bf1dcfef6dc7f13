import * as errors from '../../src/errors';
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  IllegalTransitionError,
  NotFoundError,
  ValidationError,
} from '../../src/errors';
import {
  domainErrorResponse,
  type DomainErrorResponse,
} from '../../src/http/domain-error-response';

/** Every DomainError class src/errors.ts exports, with one error of it and its answer. */
const EXPECTED: Record<string, [DomainError, DomainErrorResponse]> = {
  ValidationError: [
    new ValidationError({ name: ['name must not be empty'] }),
    {
      status: 400,
      body: {
        error: 'invalid_input',
        message: 'Invalid input: name: name must not be empty',
        fields: { name: ['name must not be empty'] },
      },
    },
  ],
  ForbiddenError: [
    new ForbiddenError('only an admin may change a role', 'actor-id'),
    { status: 403, body: { error: 'forbidden', message: 'only an admin may change a role' } },
  ],
  NotFoundError: [
    new NotFoundError('project', 7),
    { status: 404, body: { error: 'not_found', message: 'project 7 not found' } },
  ],
  IllegalTransitionError: [
    new IllegalTransitionError('export job', 3, 'cancelled', 'cancel'),
    {
      status: 409,
      body: {
        error: 'illegal_transition',
        message: 'cannot cancel export job 3: it is cancelled',
      },
    },
  ],
  ConflictError: [
    new ConflictError('email is already taken (ix_profiles_email)', 'email'),
    {
      status: 409,
      body: {
        error: 'conflict',
        message: 'email is already taken (ix_profiles_email)',
        field: 'email',
      },
    },
  ],
};

const domainErrorClasses = Object.entries(errors)
  .filter(
    ([, value]) => typeof value === 'function' && value.prototype instanceof errors.DomainError,
  )
  .map(([name]) => name);

describe('domainErrorResponse', () => {
  it('has an answer for every DomainError class src/errors.ts exports', () => {
    // A new error class fails here until it is given a status above and in the mapping.
    expect(domainErrorClasses.sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it.each(Object.entries(EXPECTED))('answers %s as the table says', (_name, [error, expected]) => {
    expect(domainErrorResponse(error)).toEqual(expected);
  });

  it('answers a ConflictError that names no field without `field`', () => {
    const response = domainErrorResponse(new ConflictError('export job 4 is pending'));
    expect(response).toEqual({
      status: 409,
      body: { error: 'conflict', message: 'export job 4 is pending' },
    });
    expect(response.body).not.toHaveProperty('field');
  });

  it("answers a subclass of a mapped error with its parent's status", () => {
    class ProjectNotFound extends NotFoundError {}
    expect(domainErrorResponse(new ProjectNotFound('project', 1)).status).toBe(404);
  });

  it('answers a DomainError of an unknown kind 500, with its code and message', () => {
    class QuotaExceeded extends DomainError {
      readonly code = 'quota_exceeded';
    }
    expect(domainErrorResponse(new QuotaExceeded('over quota'))).toEqual({
      status: 500,
      body: { error: 'quota_exceeded', message: 'over quota' },
    });
  });
});
