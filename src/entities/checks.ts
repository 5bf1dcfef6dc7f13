import { quoteIdentifier, quoteLiteral } from '../sql/quote';

/**
 * Builders for the SQL of the `@Check` constraints, so that every check reads the same and the
 * value lists come from `value-sets.ts` instead of being typed twice.
 *
 * NULL passes every one of these (a CHECK is only violated by FALSE), which is what nullable
 * columns such as `images.width` need.
 */

/** `"column" IN ('a', 'b', …)` */
export function oneOf(column: string, values: readonly string[]): string {
  return `${quoteIdentifier(column)} IN (${values.map(quoteLiteral).join(', ')})`;
}

/** `"column" >= 0` */
export function nonNegative(column: string): string {
  return `${quoteIdentifier(column)} >= 0`;
}

/** `"column" BETWEEN 0 AND 100` */
export function percentage(column: string): string {
  return `${quoteIdentifier(column)} BETWEEN 0 AND 100`;
}
