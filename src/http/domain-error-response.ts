import {
  ConflictError,
  DomainError,
  ForbiddenError,
  IllegalTransitionError,
  NotFoundError,
  ValidationError,
} from '../errors';

/** The JSON body of an error answer. */
export interface DomainErrorBody {
  /** The error's `code`: `not_found`, `invalid_input`, `forbidden`, … */
  error: string;
  message: string;
  /** ValidationError: property path → its messages. */
  fields?: Record<string, string[]>;
  /** ConflictError: the field that collides, when the error names one. */
  field?: string;
}

export interface DomainErrorResponse {
  status: number;
  body: DomainErrorBody;
}

/**
 * A domain error as an HTTP answer: the one table both `@pixcrawler/data/nestjs`
 * (DomainErrorFilter) and `@pixcrawler/data/express` (domainErrorHandler) answer with.
 *
 *   ValidationError        400  with `fields`: property path → messages
 *   ForbiddenError         403  the caller may see the target but not do this
 *   NotFoundError          404  a missing row and another user's row answer alike
 *   IllegalTransitionError 409  the row's status does not allow the change
 *   ConflictError          409  with `field` when the error names one
 *   any other DomainError  500  a subclass of your own that this table does not know
 *
 * The body is `{ error: code, message }` plus the fields above; nothing else of the error (a
 * ForbiddenError's actorId, a NotFoundError's resource and id) is sent.
 */
export function domainErrorResponse(error: DomainError): DomainErrorResponse {
  const body: DomainErrorBody = { error: error.code, message: error.message };
  if (error instanceof ValidationError) {
    return { status: 400, body: { ...body, fields: error.fields } };
  }
  if (error instanceof ForbiddenError) return { status: 403, body };
  if (error instanceof NotFoundError) return { status: 404, body };
  if (error instanceof IllegalTransitionError) return { status: 409, body };
  if (error instanceof ConflictError) {
    return { status: 409, body: error.field ? { ...body, field: error.field } : body };
  }
  return { status: 500, body };
}
