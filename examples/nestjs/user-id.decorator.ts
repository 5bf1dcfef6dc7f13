import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';

/**
 * The caller's user id. A real app takes it from its authentication (a verified token); the
 * example trusts the `x-user-id` header. The services reject a missing or malformed id as a
 * ValidationError (400).
 */
export const UserId = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string =>
    context.switchToHttp().getRequest<Request>().header('x-user-id') ?? '',
);
