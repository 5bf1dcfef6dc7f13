import type { Logger } from 'typeorm';
import { DataSource } from 'typeorm';
import { dataSourceOptions } from '../../src/connection/data-source-options';

export interface CapturedQuery {
  sql: string;
  params: unknown[];
}

/**
 * A DataSource that records every statement it runs, so a test can EXPLAIN exactly the SQL a
 * repository method sends (not a copy of it that could drift).
 */
export async function capturingDataSource(url: string) {
  const captured: CapturedQuery[] = [];
  const logger: Logger = {
    logQuery: (sql, params) => {
      if (!/^(START TRANSACTION|BEGIN|COMMIT|ROLLBACK)/i.test(sql)) {
        captured.push({ sql, params: Array.isArray(params) ? params : [] });
      }
    },
    logQueryError: () => undefined,
    logQuerySlow: () => undefined,
    logSchemaBuild: () => undefined,
    logMigration: () => undefined,
    log: () => undefined,
  };
  const dataSource = new DataSource(dataSourceOptions({ url, logging: ['query'], logger }));
  await dataSource.initialize();
  return {
    dataSource,
    /** The last statement `work` ran. */
    async lastQuery(work: () => Promise<unknown>): Promise<CapturedQuery> {
      captured.length = 0;
      await work();
      const last = captured.at(-1);
      if (!last) throw new Error('no query captured');
      return last;
    },
  };
}

/** Every index name in an EXPLAIN (FORMAT JSON) plan. */
export function indexesInPlan(plan: unknown): string[] {
  const found: string[] = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(walk);
    else if (node && typeof node === 'object') {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'Index Name' && typeof value === 'string') found.push(value);
        else walk(value);
      }
    }
  };
  walk(plan);
  return found;
}
