/**
 * `@pixcrawler/data/express`: the domain errors as HTTP answers in an Express application.
 * Only types come from express, so requiring this entry loads no express module.
 */
import type { ErrorRequestHandler, Request } from 'express';
import { DomainError } from '../errors';
import { domainErrorResponse, type DomainErrorBody } from '../http/domain-error-response';

export interface DomainErrorHandlerOptions {
  /**
   * Errors that are neither domain errors nor a request body that is not JSON (bugs, outages):
   *
   * - `'next'` (the default): passed on with `next(error)`, to the application's own error
   *   handler or, without one, Express's (it logs the error and answers 500);
   * - `'respond'`: reported to `log`, then answered 500
   *   `{ error: 'internal', message: 'Internal server error' }`, without details.
   *
   * Either way an error that carries a 4xx status of its own (body-parser's 413 for a body too
   * large) goes on to `next`, which answers with that status.
   */
  otherErrors?: 'next' | 'respond';
  /** With `otherErrors: 'respond'`: where each such error is reported. Default `console.error`. */
  log?: (error: unknown, req: Request) => void;
}

const INVALID_JSON: DomainErrorBody = {
  error: 'invalid_json',
  message: 'the request body is not valid JSON',
};

const INTERNAL: DomainErrorBody = { error: 'internal', message: 'Internal server error' };

/** express.json() (body-parser) failed to parse the body. */
const isInvalidJson = (error: unknown) =>
  (error as { type?: unknown } | null)?.type === 'entity.parse.failed';

/** An http-errors style client error (`status` or `statusCode` 400–499), as body-parser throws. */
function hasClientStatus(error: unknown): boolean {
  const { status, statusCode } = (error ?? {}) as { status?: unknown; statusCode?: unknown };
  const code = status ?? statusCode;
  return typeof code === 'number' && code >= 400 && code < 500;
}

/**
 * An Express error handler, registered after the routes (`app.use(domainErrorHandler())`):
 *
 * - a DomainError is answered by `domainErrorResponse` (400, 403, 404, 409; see its table);
 * - a body `express.json()` could not parse is answered 400 `{ error: 'invalid_json', message }`;
 * - anything else goes to `next(error)`, or is answered 500 with `otherErrors: 'respond'`.
 *
 * Once the response has begun, every error goes to `next` (Express then closes the connection).
 * Express 5 passes a rejected promise of a route handler here by itself.
 */
export function domainErrorHandler(options: DomainErrorHandlerOptions = {}): ErrorRequestHandler {
  const otherErrors = options.otherErrors ?? 'next';
  const log = options.log ?? ((error: unknown) => console.error(error));
  return (error: unknown, req, res, next) => {
    if (res.headersSent) return next(error);
    if (error instanceof DomainError) {
      const { status, body } = domainErrorResponse(error);
      res.status(status).json(body);
      return;
    }
    if (isInvalidJson(error)) {
      res.status(400).json(INVALID_JSON);
      return;
    }
    if (otherErrors === 'next' || hasClientStatus(error)) return next(error);
    log(error, req);
    res.status(500).json(INTERNAL);
  };
}
