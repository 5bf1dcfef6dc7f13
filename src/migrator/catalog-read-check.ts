import type { QueryRunner } from 'typeorm';

/** Why plan did not run a read of up(). */
export interface UnrunRead {
  /**
   * `changes`: it calls a function that can change something (setval, pg_advisory_lock,
   * pg_notify…) or tried to write; `beyond-catalog`: it names a table, sequence, function or type
   * that is not PostgreSQL's own; `unchecked`: plan could not tell what it does.
   */
  reason: 'changes' | 'beyond-catalog' | 'unchecked';
  /** The objects behind the reason, as PostgreSQL names them, or what PostgreSQL answered. */
  detail: string;
}

/*
 * Whether a read of up() may run: PostgreSQL parses it as the subquery of a temporary view (which
 * runs nothing) and plan reads the stored parse tree. It may run when every object the tree names
 * was made by initdb (the catalog, information_schema, built-in functions, operators and types:
 * oids below FirstNormalObjectId), no function it calls is volatile (setval, nextval,
 * pg_advisory_lock and its xact, shared and try variants, pg_notify…) or in NOT_CATALOG_READS,
 * and every node in it is one of NODES, so nothing it does goes unseen. What is not one SELECT
 * (a writable CTE, SELECT … INTO, a second statement) does not parse as a subquery: not run.
 */
const FIRST_NORMAL_OBJECT_ID = 16384;
/** Non-volatile built-ins that read beyond the catalog or take a transaction id. */
const NOT_CATALOG_READS = /_to_xml|^txid_current$|^pg_current_xact_id$/;
/**
 * The parse-tree nodes of plain SELECTs, set operations, CTEs, aggregates and windows, as
 * PostgreSQL 16 and later name them, then the shorter names 13 to 15 give some of them.
 */
const NODES = new Set([
  'QUERY',
  'RANGETBLENTRY',
  'RTEPERMISSIONINFO',
  'RANGETBLFUNCTION',
  'RANGETBLREF',
  'ALIAS',
  'FROMEXPR',
  'JOINEXPR',
  'TARGETENTRY',
  'SORTGROUPCLAUSE',
  'SETOPERATIONSTMT',
  'COMMONTABLEEXPR',
  'WINDOWCLAUSE',
  'VAR',
  'CONST',
  'FUNCEXPR',
  'OPEXPR',
  'DISTINCTEXPR',
  'NULLIFEXPR',
  'SCALARARRAYOPEXPR',
  'ROWCOMPAREEXPR',
  'BOOLEXPR',
  'SUBLINK',
  'NULLTEST',
  'BOOLEANTEST',
  'RELABELTYPE',
  'COERCEVIAIO',
  'ARRAYCOERCEEXPR',
  'COLLATEEXPR',
  'CASEEXPR',
  'CASEWHEN',
  'CASETESTEXPR',
  'ARRAYEXPR',
  'ROWEXPR',
  'COALESCEEXPR',
  'MINMAXEXPR',
  'SQLVALUEFUNCTION',
  'FIELDSELECT',
  'SUBSCRIPTINGREF',
  'AGGREF',
  'WINDOWFUNC',
  ...['RTE', 'ROWCOMPARE', 'COLLATE', 'CASE', 'WHEN', 'ARRAY', 'ROW', 'COALESCE', 'MINMAX'],
]);
/** Fields of those nodes that name a function or an operator (whose function then runs). */
const FUNCTION_FIELDS = new Set([
  'funcid',
  'opfuncid',
  'hashfuncid',
  'negfuncid',
  'aggfnoid',
  'winfnoid',
  'startInRangeFunc',
  'endInRangeFunc',
]);
const OPERATOR_FIELDS = new Set(['opno', 'opnos', 'eqop', 'sortop']);
const VIEW = 'pixcrawler_plan_read';

/** What a numeric field of a parse tree names (typmods and counts name nothing). */
function namedKind(field: string): 'function' | 'operator' | 'relation' | 'type' | undefined {
  if (FUNCTION_FIELDS.has(field)) return 'function';
  if (OPERATOR_FIELDS.has(field)) return 'operator';
  if (field === 'relid') return 'relation';
  return /typ(?:e|es|eid|id)$/i.test(field) ? 'type' : undefined;
}

export async function vetRead(runner: QueryRunner, text: string): Promise<UnrunRead | undefined> {
  // The view holds no parameters: `$1` becomes NULL, which PostgreSQL types as it types `$1`.
  const parsed = text.replace(/(?<![\w$])\$\d+(?![\w$])/g, 'NULL');
  if (parsed.includes('$')) {
    return { reason: 'unchecked', detail: 'it holds a "$" that is no parameter' };
  }
  let tree: string;
  let view: number;
  try {
    await runner.query(`CREATE TEMPORARY VIEW ${VIEW} AS SELECT FROM (\n${parsed}\n) AS parsed`);
    const [row]: { tree: string; view: string }[] = await runner.query(
      `SELECT ev_action::text AS tree, ev_class::text AS view FROM pg_rewrite
        WHERE ev_class = 'pg_temp.${VIEW}'::regclass`,
    );
    tree = row.tree;
    view = Number(row.view);
  } catch (error) {
    return { reason: 'unchecked', detail: `PostgreSQL: ${(error as Error).message}` };
  }
  const functions: number[] = [];
  const operators: number[] = [];
  const foreign: { kind: string; oid: number }[] = [];
  for (const [, field, one, list] of tree.matchAll(/:(\w+) (?:(\d+)|\(o ([\d ]*)\))/g)) {
    const kind = namedKind(field);
    if (!kind) continue;
    for (const oid of (one ?? list).split(' ').filter(Boolean).map(Number)) {
      if (oid === 0 || (kind === 'relation' && oid === view)) continue;
      if (oid >= FIRST_NORMAL_OBJECT_ID) foreign.push({ kind, oid });
      else if (kind === 'function') functions.push(oid);
      else if (kind === 'operator') operators.push(oid);
    }
  }
  const calls: { name: string; proname: string; volatility: string }[] = await runner.query(
    `SELECT p.oid::regprocedure::text AS name, p.proname, p.provolatile AS volatility
       FROM pg_proc p
      WHERE p.oid = ANY($1::oid[])
         OR p.oid IN (SELECT o.oprcode::oid FROM pg_operator o WHERE o.oid = ANY($2::oid[]))`,
    [functions, operators],
  );
  const changing = calls.filter(
    (call) => call.volatility === 'v' || NOT_CATALOG_READS.test(call.proname),
  );
  if (changing.length > 0) {
    return { reason: 'changes', detail: changing.map((call) => call.name).join(', ') };
  }
  if (foreign.length > 0) {
    const named: { name: string }[] = await runner.query(
      `SELECT DISTINCT CASE kind WHEN 'relation' THEN oid::regclass::text
                                 WHEN 'function' THEN oid::regprocedure::text
                                 WHEN 'operator' THEN oid::regoperator::text
                                 ELSE oid::regtype::text END AS name
         FROM unnest($1::text[], $2::oid[]) AS object(kind, oid)`,
      [foreign.map((object) => object.kind), foreign.map((object) => object.oid)],
    );
    return { reason: 'beyond-catalog', detail: named.map((object) => object.name).join(', ') };
  }
  const unknown = [...new Set([...tree.matchAll(/\{([A-Z_]+)/g)].map(([, node]) => node))].filter(
    (node) => !NODES.has(node),
  );
  if (unknown.length > 0) {
    return { reason: 'unchecked', detail: `its parse holds ${unknown.join(', ')}` };
  }
  return undefined;
}
