import { Catch, HttpStatus, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { Response } from 'express';
import {
  ConflictError,
  DomainError,
  ForbiddenError,
  IllegalTransitionError,
  NotFoundError,
  ValidationError,
} from '@pixcrawler/data';

/**
 * The domain errors as HTTP answers. The services throw no HTTP exceptions; this filter is the
 * one place that decides status codes:
 *
 *   NotFoundError          404  (a missing row and another user's row answer alike)
 *   ValidationError        400  with `fields`: property path → messages
 *   ForbiddenError         403  (the caller may not do this: a non-admin changing a role)
 *   IllegalTransitionError 409
 *   ConflictError          409  with `field` when the error names one
 *
 * Anything else is left to Nest (its HttpExceptions, or 500).
 */
@Catch(DomainError)
export class DomainErrorFilter implements ExceptionFilter<DomainError> {
  catch(error: DomainError, host: ArgumentsHost): void {
    const response = host.switchToHttp().getResponse<Response>();
    const body: Record<string, unknown> = { error: error.code, message: error.message };
    let status = HttpStatus.INTERNAL_SERVER_ERROR;
    if (error instanceof NotFoundError) {
      status = HttpStatus.NOT_FOUND;
    } else if (error instanceof ValidationError) {
      status = HttpStatus.BAD_REQUEST;
      body.fields = error.fields;
    } else if (error instanceof ForbiddenError) {
      status = HttpStatus.FORBIDDEN;
    } else if (error instanceof IllegalTransitionError) {
      status = HttpStatus.CONFLICT;
    } else if (error instanceof ConflictError) {
      status = HttpStatus.CONFLICT;
      if (error.field) body.field = error.field;
    }
    response.status(status).json(body);
  }
}
