import { Check } from 'typeorm';
import { quoteIdentifier, quoteLiteral } from '../sql/quote';

/**
 * Builders for the `@Check` constraints, so that every check reads the same, the value lists
 * come from `value-sets.ts` instead of being typed twice, and each rule carries its own repair:
 * what `pixcrawler-db preflight --fix` sets a breaking row's column to, written beside the SQL
 * it repairs (nothing parses the SQL back).
 *
 * NULL passes every one of these (a CHECK is only violated by FALSE), which is what nullable
 * columns such as `images.width` need.
 */

/** How a row breaking a check is repaired: one column set to an SQL expression. */
export interface CheckRepair {
  column: string;
  /** The SQL expression the column is set to (may refer to the column itself). */
  set: string;
  /** What the repair does, in a few words. */
  describe: string;
}

/** A check's SQL and, when there is a safe mechanical one, its repair. */
export interface CheckExpression {
  sql: string;
  repair?: CheckRepair;
}

/**
 * `"column" IN ('a', 'b', …)`. With `repairTo` (one of the values, checked by the type), a row
 * holding anything else is repaired by setting that value.
 */
export function oneOf<T extends string>(
  column: string,
  values: readonly T[],
  repairTo?: NoInfer<T>,
): CheckExpression {
  return {
    sql: `${quoteIdentifier(column)} IN (${values.map(quoteLiteral).join(', ')})`,
    repair:
      repairTo === undefined
        ? undefined
        : { column, set: quoteLiteral(repairTo), describe: `set ${column} to '${repairTo}'` },
  };
}

/** `"column" >= 0`; repaired by raising a negative value to 0. */
export function nonNegative(column: string): CheckExpression {
  const c = quoteIdentifier(column);
  return {
    sql: `${c} >= 0`,
    repair: { column, set: `GREATEST(${c}, 0)`, describe: `raise ${column} to 0` },
  };
}

/** `"column" BETWEEN 0 AND 100`; repaired by clamping into the range. */
export function percentage(column: string): CheckExpression {
  const c = quoteIdentifier(column);
  return {
    sql: `${c} BETWEEN 0 AND 100`,
    repair: { column, set: `LEAST(GREATEST(${c}, 0), 100)`, describe: `clamp ${column} to 0..100` },
  };
}

const repairs = new Map<string, CheckRepair>();

/** TypeORM's `@Check(name, sql)`, remembering the rule's repair under the constraint's name. */
export function CheckRule(name: string, rule: CheckExpression): ClassDecorator {
  if (rule.repair) repairs.set(name, rule.repair);
  return Check(name, rule.sql);
}

/** The repair of the named check constraint, or undefined when it needs a person. */
export function repairOfCheck(name: string): CheckRepair | undefined {
  return repairs.get(name);
}

/**
 * The predicate of the partial indexes that hold only pending jobs (ix_validation_job_pending,
 * ix_export_job_pending). A claim must spell its condition as this literal (not a bound
 * parameter) for the planner to use them.
 */
export const PENDING_JOB = `"status" = 'pending'`;
