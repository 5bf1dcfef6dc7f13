import type { ErrorRequestHandler } from 'express';
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  IllegalTransitionError,
  NotFoundError,
  ValidationError,
} from '@pixcrawler/data';

export interface ErrorBody {
  error: string;
  message: string;
  /** ValidationError: the messages of each bad field. */
  fields?: Record<string, string[]>;
  /** ConflictError: the field that collides, when one does. */
  field?: string;
}

/**
 * The domain errors as HTTP answers. The services know nothing of HTTP; this table is the one
 * place that decides status codes:
 *
 *   NotFoundError          404  (a missing row and another user's row answer alike)
 *   ValidationError        400  with `fields`: property path → messages
 *   ForbiddenError         403  (the caller may not do this: a non-admin changing a role)
 *   IllegalTransitionError 409
 *   ConflictError          409  with `field` when the error names one
 */
export function httpError(error: DomainError): { status: number; body: ErrorBody } {
  const body: ErrorBody = { error: error.code, message: error.message };
  if (error instanceof NotFoundError) return { status: 404, body };
  if (error instanceof ValidationError)
    return { status: 400, body: { ...body, fields: error.fields } };
  if (error instanceof ForbiddenError) return { status: 403, body };
  if (error instanceof IllegalTransitionError) return { status: 409, body };
  if (error instanceof ConflictError) {
    return { status: 409, body: error.field ? { ...body, field: error.field } : body };
  }
  return { status: 500, body };
}

/**
 * Express's error handler: domain errors by the table above, a body that is not JSON as 400;
 * anything else is a bug or an outage, logged and answered 500 without details.
 */
export const errorHandler: ErrorRequestHandler = (error, _req, res, next) => {
  if (res.headersSent) return next(error);
  if (error instanceof DomainError) {
    const { status, body } = httpError(error);
    res.status(status).json(body);
    return;
  }
  if ((error as { type?: string }).type === 'entity.parse.failed') {
    res.status(400).json({ error: 'invalid_json', message: 'the request body is not valid JSON' });
    return;
  }
  console.error(error);
  res.status(500).json({ error: 'internal', message: 'Internal server error' });
};
