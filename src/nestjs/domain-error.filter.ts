import { Catch, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import { DomainError } from '../errors';
import { domainErrorResponse } from '../http/domain-error-response';

/**
 * The domain errors as HTTP answers, by `domainErrorResponse`'s table (400, 403, 404, 409; the
 * Express handler answers the same). The services throw no HTTP exceptions; errors that are not
 * domain errors are left to Nest (its HttpExceptions, or 500). It answers through the HTTP
 * adapter, so it works on Express and Fastify alike. In other contexts (microservices,
 * GraphQL) it throws the error on, to their own handling.
 *
 * Register it globally with `registerFilter: true` on PixCrawlerDataModule, or yourself:
 * `{ provide: APP_FILTER, useClass: DomainErrorFilter }`, `@UseFilters(DomainErrorFilter)`, or
 * `app.useGlobalFilters(new DomainErrorFilter(app.get(HttpAdapterHost)))`.
 */
@Catch(DomainError)
export class DomainErrorFilter implements ExceptionFilter<DomainError> {
  constructor(private readonly adapterHost: HttpAdapterHost) {}

  catch(error: DomainError, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw error;
    const { status, body } = domainErrorResponse(error);
    this.adapterHost.httpAdapter.reply(host.switchToHttp().getResponse(), body, status);
  }
}
