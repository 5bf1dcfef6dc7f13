import type { QueryRunner } from 'typeorm';

export interface Statement {
  sql: string;
  params: unknown[];
}

/**
 * Records the last statement run on a query runner, so a benchmark can EXPLAIN exactly the SQL
 * a repository method sent (not a copy of it that could drift).
 */
export function recordStatements(runner: QueryRunner): { last(): Statement } {
  let last: Statement | undefined;
  const original = runner.query.bind(runner) as (...args: unknown[]) => Promise<unknown>;
  Object.assign(runner, {
    query: (sql: string, params?: unknown[], ...rest: unknown[]) => {
      if (!/^\s*(EXPLAIN|SAVEPOINT|ROLLBACK|RELEASE|BEGIN|START|COMMIT)/i.test(sql)) {
        last = { sql, params: params ?? [] };
      }
      return original(sql, params, ...rest);
    },
  });
  return {
    last() {
      if (!last) throw new Error('no statement recorded');
      return last;
    },
  };
}

/** The scans of a plan, e.g. "Index Scan ix_image_crawl_job_id" or "Seq Scan images". */
export function scansInPlan(plan: unknown): string[] {
  const found: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      const type = record['Node Type'];
      if (typeof type === 'string' && type.endsWith('Scan')) {
        const target = record['Index Name'] ?? record['Relation Name'];
        found.push(target ? `${type} ${String(target)}` : type);
      }
      for (const value of Object.values(record)) walk(value);
    }
  };
  walk(plan);
  return [...new Set(found)];
}

/** EXPLAIN (FORMAT JSON) of a statement on the runner (inside its transaction), summarised. */
export async function planOf(runner: QueryRunner, statement: Statement): Promise<string> {
  const rows: Array<{ 'QUERY PLAN': unknown }> = await runner.query(
    `EXPLAIN (FORMAT JSON) ${statement.sql}`,
    statement.params,
  );
  return scansInPlan(rows[0]['QUERY PLAN']).join(' + ');
}
