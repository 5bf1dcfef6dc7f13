import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { PoolClient } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { DataSource } from 'typeorm';
import { assertPrimary } from '../connection/server-role';
import { existingTables, PIXCRAWLER_TABLE_NAMES } from './legacy-schema';
import {
  breakingCondition,
  preflightRules,
  updateRepair,
  type PreflightRule,
  type Query,
} from './preflight-rules';
import { quoteIdentifier } from '../sql/quote';

/**
 * The backup `preflight --fix` writes before it changes anything, and `--restore`, which puts it
 * back only after checking every line of it against the database: its format (a header naming
 * the database, the rows, an end line with the file's digest and, with a key, its HMAC), the
 * writer, and the restore.
 */

export type PreflightBackupProblem =
  | 'backup-dir-not-writable'
  | 'backup-unreadable'
  /** A line --fix did not write: not JSON, an unknown table, column or type, a forged row. */
  | 'invalid-backup'
  /** Written before backups had a header: nothing in it can be checked. */
  | 'old-backup'
  /** A signed backup without the key, a wrong signature, or an unsigned one while a key is given. */
  | 'bad-signature'
  /** Written on another database (server, name or oid differ). */
  | 'other-database'
  | 'row-exists'
  | 'row-missing'
  /** The column --fix changed no longer holds the value --fix wrote. */
  | 'row-changed';

/**
 * `--fix` could not write its backup, or `--restore` cannot put a backup back. Nothing was
 * changed in the database when this is thrown.
 */
export class PreflightBackupError extends Error {
  override name = 'PreflightBackupError';
  constructor(
    readonly problem: PreflightBackupProblem,
    /** The backup file or directory. */
    readonly file: string,
    message: string,
    /** For every --restore problem but backup-unreadable: the 1-based line of the backup file. */
    readonly line?: number,
    /** The system or database error code behind it (EACCES, 23505, …). */
    readonly code?: string,
  ) {
    super(message);
  }
}

/** The database a backup was written on. */
export interface DatabaseIdentity {
  /** pg_control_system()'s system identifier (one per cluster, new after initdb or pg_upgrade). */
  systemIdentifier: string | null;
  name: string;
  oid: number;
}

export async function databaseIdentity(query: Query): Promise<DatabaseIdentity> {
  const [database] = await query<{ name: string; oid: string }>(
    `SELECT datname AS name, oid::text AS oid FROM pg_database WHERE datname = current_database()`,
  );
  // A managed service may withhold the function; the name and oid still tell databases apart.
  const [control] = await query<{ id: string }>(
    'SELECT system_identifier::text AS id FROM pg_control_system()',
  ).catch(() => [{ id: null }]);
  return { systemIdentifier: control?.id ?? null, name: database.name, oid: Number(database.oid) };
}

/** The backup format this code writes and reads (the header's `pixcrawlerBackup`). */
export const PREFLIGHT_BACKUP_FORMAT = 1;

/** Line 1 of a backup. */
export interface PreflightBackupHeader {
  pixcrawlerBackup: number;
  database: DatabaseIdentity;
  createdAt: string;
  signature: 'hmac-sha256' | 'none';
}

/**
 * The last line of a backup: the SHA-256 (and, when signed, the HMAC-SHA256) of every byte
 * before it, and how many row lines there are. A truncated or edited file does not match.
 */
export interface PreflightBackupEnd {
  pixcrawlerBackupEnd: number;
  lines: number;
  sha256: string;
  hmacSha256?: string;
}

/** The open backup file: every byte written goes through the digest (and the HMAC). */
export class BackupWriter {
  private readonly sha256: Hash = createHash('sha256');
  private readonly hmac: Hmac | undefined;
  private newlines = 0;

  constructor(
    readonly out: WriteStream,
    key: string | undefined,
  ) {
    this.hmac = key === undefined ? undefined : createHmac('sha256', key);
  }

  async write(chunk: Buffer | string): Promise<void> {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.sha256.update(bytes);
    this.hmac?.update(bytes);
    for (let at = bytes.indexOf(0x0a); at !== -1; at = bytes.indexOf(0x0a, at + 1)) {
      this.newlines += 1;
    }
    if (!this.out.write(bytes)) await once(this.out, 'drain');
  }

  /** Writes the end line; nothing may be written after it. */
  async end(): Promise<void> {
    const end: PreflightBackupEnd = {
      pixcrawlerBackupEnd: PREFLIGHT_BACKUP_FORMAT,
      lines: this.newlines - 1,
      sha256: this.sha256.digest('hex'),
      ...(this.hmac ? { hmacSha256: this.hmac.digest('hex') } : {}),
    };
    if (!this.out.write(`${JSON.stringify(end)}\n`)) await once(this.out, 'drain');
  }
}

/** Writes a COPY TO STDOUT of one JSON value per row to the open backup stream. */
export async function appendJsonLines(
  client: PoolClient,
  out: BackupWriter,
  select: string,
): Promise<void> {
  // CSV with a quote and a delimiter that JSON text never contains: each value comes out raw.
  const stream = client.query(
    copyTo(`COPY (${select}) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`),
  );
  // Written chunk by chunk, not piped: the backup stream stays open for the next table.
  for await (const chunk of stream) await out.write(chunk as Buffer);
}

/** Creates the backup file (never overwriting one), or PreflightBackupError before any change. */
export async function createBackupFile(
  backupDir: string,
): Promise<{ file: string; out: WriteStream }> {
  const file = path.resolve(
    backupDir,
    `pixcrawler-preflight-fix-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`,
  );
  const refuse = (error: NodeJS.ErrnoException): never => {
    throw new PreflightBackupError(
      'backup-dir-not-writable',
      path.resolve(backupDir),
      `cannot write a backup file in ${path.resolve(backupDir)}: ${error.code ?? error.message}`,
      undefined,
      error.code,
    );
  };
  await mkdir(backupDir, { recursive: true }).catch(refuse);
  const out = createWriteStream(file, { flags: 'wx' });
  await new Promise<void>((resolve, reject) => {
    out.once('open', () => resolve());
    out.once('error', reject);
  }).catch(refuse);
  return { file, out };
}

export interface RestoreOptions {
  /**
   * The key the backup was signed with (HMAC-SHA256). A signed backup needs it; given a key,
   * an unsigned backup is refused (stripping the signature must not get a forged file in).
   */
  key?: string;
  /**
   * Write a changed row's backed-up value even where its column no longer holds what --fix
   * wrote; `RestoreResult.overwritten` names each such row. Without it such a row refuses the file.
   */
  overwriteChanged?: boolean;
}

/** A row written back although its column had changed since the fix (`overwriteChanged`). */
export interface OverwrittenRow {
  line: number;
  table: string;
  id: unknown;
  column: string;
  /** The value --fix wrote. */
  fixWrote: unknown;
  /** The value the column held instead, now overwritten. */
  found: unknown;
  /** The backed-up value written over it. */
  restored: unknown;
}

export interface RestoreResult {
  backupFile: string;
  /** The database the backup was written on: this one. */
  database: DatabaseIdentity;
  /** Whether the backup's HMAC was checked with the key. */
  signed: boolean;
  /** Rows inserted back (the fix had deleted them), per table. */
  reinserted: Record<string, number>;
  /** Rows whose backed-up values were written back (the fix had changed them), per table. */
  restored: Record<string, number>;
  overwritten: OverwrittenRow[];
}

type Row = Record<string, unknown>;

/** A row line of a backup, checked against the catalog and the rules. */
interface BackupLine {
  line: number;
  action: 'delete' | 'update';
  table: string;
  reason: string;
  row: Row;
  /** Update lines: the one column --fix changed, and `{ [column]: the value it wrote }`. */
  column?: string;
  after?: Row;
}

/** A backup as read: its header, its row lines (parsed, not yet checked) and its end line. */
interface BackupFile {
  header: PreflightBackupHeader;
  entries: Array<{ line: number; value: unknown }>;
  end?: { line: number; value: PreflightBackupEnd };
  lastLine: number;
  /** The SHA-256 and HMAC-SHA256 of every byte before the end line, as read. */
  sha256: string;
  hmacSha256?: string;
}

/** Keys that would reach an object's prototype if anything ever merged them. */
const FORBIDDEN_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

const isPlainObject = (value: unknown): value is Row =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function forbiddenKey(object: Row): string | undefined {
  return Object.keys(object).find((key) => FORBIDDEN_KEYS.has(key));
}

/** Reads every line, computing the digest; refuses what is not JSON or has no header. */
async function readBackup(file: string, key: string | undefined): Promise<BackupFile> {
  const input = createReadStream(file);
  const opened = new Promise<void>((resolve, reject) => {
    input.once('open', () => resolve());
    input.once('error', reject);
  });
  await opened.catch((error: NodeJS.ErrnoException) => {
    throw new PreflightBackupError(
      'backup-unreadable',
      file,
      `cannot read ${file}: ${error.code ?? error.message}`,
      undefined,
      error.code,
    );
  });
  const sha256 = createHash('sha256');
  const hmac = key === undefined ? undefined : createHmac('sha256', key);
  let header: PreflightBackupHeader | undefined;
  let end: BackupFile['end'];
  const entries: BackupFile['entries'] = [];
  let number = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    number += 1;
    const invalid = (why: string) =>
      new PreflightBackupError('invalid-backup', file, `line ${number}: ${why}`, number);
    if (end) throw invalid(`after the end line (line ${end.line})`);
    let value: unknown;
    try {
      value = text.trim() === '' ? undefined : JSON.parse(text);
    } catch {
      throw invalid('not JSON');
    }
    if (number === 1) header = backupHeader(file, value);
    if (number > 1 && isPlainObject(value) && 'pixcrawlerBackupEnd' in value) {
      end = { line: number, value: backupEnd(file, number, value) };
      continue;
    }
    sha256.update(`${text}\n`);
    hmac?.update(`${text}\n`);
    if (number > 1) entries.push({ line: number, value });
  }
  if (!header) {
    throw new PreflightBackupError('invalid-backup', file, 'line 1: the file is empty', 1);
  }
  return {
    header,
    entries,
    end,
    lastLine: number,
    sha256: sha256.digest('hex'),
    hmacSha256: hmac?.digest('hex'),
  };
}

function backupHeader(file: string, value: unknown): PreflightBackupHeader {
  const invalid = (why: string) =>
    new PreflightBackupError('invalid-backup', file, `line 1: ${why}`, 1);
  if (isPlainObject(value) && 'action' in value && !('pixcrawlerBackup' in value)) {
    throw new PreflightBackupError(
      'old-backup',
      file,
      'line 1: a row line where the header belongs: written before backups named their database, ' +
        'so it cannot be checked',
      1,
    );
  }
  if (!isPlainObject(value) || !('pixcrawlerBackup' in value)) {
    throw invalid('not the header of a preflight --fix backup');
  }
  if (value.pixcrawlerBackup !== PREFLIGHT_BACKUP_FORMAT) {
    throw invalid(`backup format ${JSON.stringify(value.pixcrawlerBackup)}, not 1`);
  }
  const database = value.database;
  const valid =
    forbiddenKey(value) === undefined &&
    isPlainObject(database) &&
    forbiddenKey(database) === undefined &&
    (database.systemIdentifier === null || typeof database.systemIdentifier === 'string') &&
    typeof database.name === 'string' &&
    Number.isSafeInteger(database.oid) &&
    typeof value.createdAt === 'string' &&
    (value.signature === 'hmac-sha256' || value.signature === 'none');
  if (!valid) throw invalid('a malformed header');
  return value as unknown as PreflightBackupHeader;
}

function backupEnd(file: string, line: number, value: Row): PreflightBackupEnd {
  const valid =
    forbiddenKey(value) === undefined &&
    value.pixcrawlerBackupEnd === PREFLIGHT_BACKUP_FORMAT &&
    Number.isSafeInteger(value.lines) &&
    typeof value.sha256 === 'string' &&
    (value.hmacSha256 === undefined || typeof value.hmacSha256 === 'string');
  if (!valid) {
    throw new PreflightBackupError(
      'invalid-backup',
      file,
      `line ${line}: a malformed end line`,
      line,
    );
  }
  return value as unknown as PreflightBackupEnd;
}

function sameDigest(a: string, b: string): boolean {
  const [x, y] = [Buffer.from(a), Buffer.from(b)];
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The file is whole, as --fix wrote it, and signed with `key` when either side has one. */
function checkIntegrity(file: string, backup: BackupFile, key: string | undefined): void {
  const { end, header } = backup;
  if (!end) {
    throw new PreflightBackupError(
      'invalid-backup',
      file,
      `line ${backup.lastLine}: the file ends without its end line (cut short?)`,
      backup.lastLine,
    );
  }
  if (end.value.lines !== backup.entries.length || !sameDigest(end.value.sha256, backup.sha256)) {
    throw new PreflightBackupError(
      'invalid-backup',
      file,
      `line ${end.line}: the lines before it do not match its SHA-256: the file was changed after --fix wrote it`,
      end.line,
    );
  }
  const signature = (why: string, line: number) =>
    new PreflightBackupError('bad-signature', file, `line ${line}: ${why}`, line);
  if (header.signature === 'hmac-sha256' && key === undefined) {
    throw signature('the backup is signed, and no key was given to check it', 1);
  }
  if (header.signature === 'none' && key !== undefined) {
    throw signature('the backup is not signed, and a key was given: only signed backups pass', 1);
  }
  if (key !== undefined && !sameDigest(end.value.hmacSha256 ?? '', backup.hmacSha256 ?? '')) {
    throw signature(
      'the HMAC-SHA256 does not match: the file was changed, or signed with another key',
      end.line,
    );
  }
}

function describeIdentity(database: DatabaseIdentity): string {
  return `"${database.name}" (oid ${database.oid}, system ${database.systemIdentifier ?? 'unknown'})`;
}

/** A column as the catalog describes it, with the JSON value to_jsonb gives for its type. */
interface CatalogColumn {
  type: string;
  notNull: boolean;
  json: 'integer' | 'number' | 'boolean' | 'string' | 'array' | 'object' | 'any';
}

/** The columns of each table, in order, from pg_attribute. */
async function catalogColumns(
  query: Query,
  tables: string[],
): Promise<Map<string, Map<string, CatalogColumn>>> {
  const rows = await query<{
    table: string;
    column: string;
    type: string;
    typname: string;
    category: string;
    notNull: boolean;
  }>(
    `SELECT c.relname AS "table", a.attname AS "column", format_type(a.atttypid, a.atttypmod) AS type,
            t.typname, t.typcategory AS category, a.attnotnull AS "notNull"
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_type t ON t.oid = a.atttypid
      WHERE c.relnamespace = current_schema()::regnamespace AND c.relname = ANY($1)
        AND a.attnum > 0 AND NOT a.attisdropped
      ORDER BY c.relname, a.attnum`,
    [tables],
  );
  const columns = new Map<string, Map<string, CatalogColumn>>();
  for (const row of rows) {
    const json: CatalogColumn['json'] = ['int2', 'int4', 'int8'].includes(row.typname)
      ? 'integer'
      : ['json', 'jsonb'].includes(row.typname)
        ? 'any'
        : (({ N: 'number', B: 'boolean', A: 'array', C: 'object' } as const)[row.category] ??
          'string');
    const table = columns.get(row.table) ?? new Map<string, CatalogColumn>();
    table.set(row.column, { type: row.type, notNull: row.notNull, json });
    columns.set(row.table, table);
  }
  return columns;
}

function jsonFits(column: CatalogColumn, value: unknown): boolean {
  switch (column.json) {
    case 'integer':
      return Number.isSafeInteger(value);
    case 'number':
      return (
        typeof value === 'number' || ['NaN', 'Infinity', '-Infinity'].includes(value as string)
      );
    case 'boolean':
      return typeof value === 'boolean';
    case 'string':
      return typeof value === 'string';
    case 'array':
      return Array.isArray(value);
    case 'object':
      return isPlainObject(value);
    case 'any':
      return true;
  }
}

/** What --fix does, from the rules: the tables it deletes from, the columns it sets. */
interface FixShape {
  columns: Map<string, Map<string, CatalogColumn>>;
  /** Tables --fix deletes rows from, with their CASCADE foreign keys. */
  cascades: Map<string, Array<Extract<PreflightRule, { kind: 'foreign-key' }>>>;
  /** Rules --fix repairs by an update, by name. */
  updates: Map<string, { rule: PreflightRule; column: string; value: string }>;
}

async function fixShape(dataSource: DataSource, query: Query): Promise<FixShape> {
  const present = await existingTables(query);
  const shape: FixShape = {
    columns: await catalogColumns(query, present),
    cascades: new Map(),
    updates: new Map(),
  };
  for (const rule of preflightRules(dataSource)) {
    if (!present.includes(rule.table)) continue;
    if (rule.kind === 'foreign-key' && !present.includes(rule.referencedTable)) continue;
    if (rule.kind === 'foreign-key' && rule.onDelete === 'CASCADE') {
      shape.cascades.set(rule.table, [...(shape.cascades.get(rule.table) ?? []), rule]);
    }
    const repair = updateRepair(rule);
    if (repair) shape.updates.set(rule.name, { rule, ...repair });
  }
  return shape;
}

const LINE_FIELDS = new Set(['action', 'table', 'reason', 'set', 'row', 'after']);

/** One row line, checked against the catalog and the rules; refused with its line number. */
function checkLine(file: string, shape: FixShape, line: number, value: unknown): BackupLine {
  const invalid = (why: string) =>
    new PreflightBackupError('invalid-backup', file, `line ${line}: ${why}`, line);
  if (!isPlainObject(value)) throw invalid('not a JSON object');
  const forbidden = (object: Row, where: string) => {
    const key = forbiddenKey(object);
    if (key !== undefined) throw invalid(`${where} has a "${key}" key`);
  };
  forbidden(value, 'the line');
  const unknownField = Object.keys(value).find((key) => !LINE_FIELDS.has(key));
  if (unknownField !== undefined) throw invalid(`unknown field "${unknownField}"`);
  const { action, table, reason, row, after } = value;
  if (action !== 'delete' && action !== 'update') {
    throw invalid('action must be "delete" or "update"');
  }
  const columns = typeof table === 'string' ? shape.columns.get(table) : undefined;
  if (typeof table !== 'string' || !columns) {
    throw invalid(`table must be one of ${[...shape.columns.keys()].join(', ')}`);
  }
  if (typeof reason !== 'string') throw invalid('reason must be a string');
  if (value.set !== undefined && typeof value.set !== 'string') {
    throw invalid('set must be a string');
  }
  const checkValues = (object: Row, where: string) => {
    for (const [column, v] of Object.entries(object)) {
      const catalog = columns.get(column);
      if (!catalog) throw invalid(`${where}: ${table} has no column "${column}"`);
      if (v === null) {
        if (catalog.notNull) throw invalid(`${where}: ${table}.${column} cannot be null`);
      } else if (!jsonFits(catalog, v)) {
        throw invalid(`${where}: ${table}.${column} is ${catalog.type}, not ${JSON.stringify(v)}`);
      }
    }
  };
  if (!isPlainObject(row)) throw invalid('row must be an object');
  forbidden(row, 'row');
  checkValues(row, 'row');
  const missing = [...columns.keys()].filter((column) => !Object.hasOwn(row, column));
  if (missing.length > 0) throw invalid(`row: lacks ${table}'s ${missing.join(', ')}`);
  if (row.id === null) throw invalid('row: the id is null');

  if (action === 'delete') {
    if (!shape.cascades.has(table)) throw invalid(`--fix never deletes ${table} rows`);
    if (after !== undefined) throw invalid('a delete line has no "after"');
    return { line, action, table, reason, row };
  }
  const update = shape.updates.get(reason);
  if (!update || update.rule.table !== table) {
    throw invalid(`${JSON.stringify(reason)} is not a rule --fix repairs on ${table}`);
  }
  if (!isPlainObject(after)) throw invalid('after must be an object');
  forbidden(after, 'after');
  const keys = Object.keys(after);
  if (keys.length !== 1 || keys[0] !== update.column) {
    throw invalid(`after must hold ${update.column} alone, the column ${reason} repairs`);
  }
  checkValues(after, 'after');
  if (
    update.rule.kind === 'foreign-key' &&
    (row[update.column] === null || after[update.column] !== null)
  ) {
    throw invalid(`${reason} sets ${update.column} to null, and only where it is not null`);
  }
  return { line, action, table, reason, row, column: update.column, after };
}

/** The rows of `lines` as one jsonb array parameter: `{ n: line, row, after }` each. */
const asParameter = (lines: BackupLine[]) =>
  JSON.stringify(lines.map(({ line, row, after }) => ({ n: line, row, after: after ?? {} })));

/** FROM clause over that parameter: `pb` the element, `r` its row and `a` its after, typed. */
const linesFrom = (table: string) =>
  `jsonb_array_elements($1::jsonb) AS pb(line)
   CROSS JOIN LATERAL jsonb_populate_record(NULL::${quoteIdentifier(table)}, pb.line->'row') r
   CROSS JOIN LATERAL jsonb_populate_record(NULL::${quoteIdentifier(table)}, pb.line->'after') a`;

function groupBy<T>(items: T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const group = groups.get(key(item));
    if (group) group.push(item);
    else groups.set(key(item), [item]);
  }
  return groups;
}

/** The first of `failures` by line, or undefined. */
const firstByLine = <T extends { n: number }>(failures: T[]) =>
  failures.sort((a, b) => a.n - b.n)[0] as T | undefined;

/**
 * Every check that needs the database, before anything is written: the values have the
 * columns' types (PostgreSQL parses them), each line is something --fix writes (an update's old
 * value breaks its rule and `after` is its repair; a deleted row's parent is missing), deleted
 * rows are still absent, and changed rows still hold what --fix wrote. Returns the expected
 * current value of each update line (its `after`, or the value found under `overwriteChanged`).
 */
async function checkAgainstDatabase(
  file: string,
  query: Query,
  shape: FixShape,
  lines: BackupLine[],
  overwriteChanged: boolean,
): Promise<{ expected: Map<number, Row>; overwritten: OverwrittenRow[] }> {
  const byLine = new Map(lines.map((line) => [line.line, line]));
  const refuse = (problem: PreflightBackupProblem, n: number, why: string, code?: string) => {
    const { table, row } = byLine.get(n)!;
    return new PreflightBackupError(
      problem,
      file,
      `line ${n}: ${table} ${JSON.stringify(row.id)} ${why}`,
      n,
      code,
    );
  };
  const byTable = groupBy(lines, (line) => line.table);

  // Types: PostgreSQL's own input functions, per table at once; line by line when one fails.
  for (const [table, tableLines] of byTable) {
    const parse = (batch: BackupLine[]) =>
      query(`SELECT count(*) FROM ${linesFrom(table)}`, [asParameter(batch)]);
    const failed = await parse(tableLines).then(
      () => false,
      () => true,
    );
    if (!failed) continue;
    for (const line of tableLines) {
      await parse([line]).catch((error: { message: string; driverError?: { code?: string } }) => {
        throw new PreflightBackupError(
          'invalid-backup',
          file,
          `line ${line.line}: ${error.message}`,
          line.line,
          error.driverError?.code,
        );
      });
    }
  }

  // Update lines of a check: the old value breaks it, and `after` is what its repair writes.
  const updates = lines.filter((line) => line.action === 'update');
  const forged: Array<{ n: number; why: string }> = [];
  for (const [reason, ruleLines] of groupBy(updates, (line) => line.reason)) {
    const { rule, column, value } = shape.updates.get(reason)!;
    if (rule.kind !== 'check') continue;
    const rows = await query<{ n: number; breaks: boolean; matches: boolean }>(
      `SELECT n, breaks, repaired IS NOT DISTINCT FROM wrote AS matches FROM (
         SELECT (pb.line->>'n')::int AS n, (${breakingCondition(rule)}) IS TRUE AS breaks,
                ${value} AS repaired, (jsonb_populate_record(NULL::${quoteIdentifier(rule.table)}, pb.line->'after')).${quoteIdentifier(column)} AS wrote
           FROM jsonb_array_elements($1::jsonb) AS pb(line)
          CROSS JOIN LATERAL jsonb_populate_record(NULL::${quoteIdentifier(rule.table)}, pb.line->'row') t) x`,
      [asParameter(ruleLines)],
    );
    for (const row of rows) {
      const line = byLine.get(row.n)!;
      if (!row.breaks) {
        forged.push({
          n: row.n,
          why: `has ${column} ${JSON.stringify(line.row[column])}, which does not break ${reason}: --fix never changed it`,
        });
      } else if (!row.matches) {
        forged.push({ n: row.n, why: `has an "after" that is not what ${reason}'s repair writes` });
      }
    }
  }
  const firstForged = firstByLine(forged);
  if (firstForged) throw refuse('invalid-backup', firstForged.n, firstForged.why);

  // Deleted rows: still absent, and each one a row --fix deletes (an orphan, or a child of one).
  // (The first of each per table is enough to refuse.)
  const deletes = lines.filter((line) => line.action === 'delete');
  const present: Array<{ n: number }> = [];
  const attached: Array<{ n: number }> = [];
  for (const [table, tableLines] of groupBy(deletes, (line) => line.table)) {
    present.push(
      ...(await query<{ n: number }>(
        `SELECT (pb.line->>'n')::int AS n FROM ${linesFrom(table)}
          WHERE EXISTS (SELECT 1 FROM ${quoteIdentifier(table)} c WHERE c.id = r.id)
          ORDER BY n LIMIT 1`,
        [asParameter(tableLines)],
      )),
    );
    const orphan = shape.cascades
      .get(table)!
      .map((fk) => `(${breakingCondition(fk)})`)
      .join(' OR ');
    attached.push(
      ...(await query<{ n: number }>(
        `SELECT (pb.line->>'n')::int AS n
           FROM jsonb_array_elements($1::jsonb) AS pb(line)
          CROSS JOIN LATERAL jsonb_populate_record(NULL::${quoteIdentifier(table)}, pb.line->'row') t
          WHERE NOT (${orphan}) ORDER BY n LIMIT 1`,
        [asParameter(tableLines)],
      )),
    );
  }
  const exists = firstByLine(present);
  if (exists) throw refuse('row-exists', exists.n, 'exists again', '23505');
  const parented = firstByLine(attached);
  if (parented) {
    const fks = shape.cascades.get(byLine.get(parented.n)!.table)!;
    throw refuse(
      'invalid-backup',
      parented.n,
      `has its ${fks.map((fk) => fk.referencedTable).join(' or ')} row: --fix deletes only rows whose parent is missing`,
    );
  }

  // Changed rows: still there, and the column still holds what --fix wrote.
  const expected = new Map<number, Row>();
  const overwritten: OverwrittenRow[] = [];
  const missing: Array<{ n: number }> = [];
  const changed: Array<{ n: number; found: unknown }> = [];
  for (const [, columnLines] of groupBy(updates, (line) => `${line.table}.${line.column}`)) {
    const { table, column } = columnLines[0] as BackupLine & { column: string };
    const c = quoteIdentifier(column);
    const rows = await query<{ n: number; present: boolean; unchanged: boolean; found: unknown }>(
      `SELECT (pb.line->>'n')::int AS n, c.id IS NOT NULL AS present,
              c.${c} IS NOT DISTINCT FROM a.${c} AS unchanged, to_jsonb(c.${c}) AS found
         FROM ${linesFrom(table)} LEFT JOIN ${quoteIdentifier(table)} c ON c.id = r.id`,
      [asParameter(columnLines)],
    );
    for (const row of rows) {
      const line = byLine.get(row.n)! as BackupLine & { column: string; after: Row };
      if (!row.present) missing.push(row);
      else if (row.unchanged) expected.set(row.n, line.after);
      else changed.push(row);
    }
  }
  const gone = firstByLine(missing);
  if (gone) throw refuse('row-missing', gone.n, 'no longer exists');
  for (const { n, found } of changed.sort((a, b) => a.n - b.n)) {
    const { table, row, column, after } = byLine.get(n)! as BackupLine & {
      column: string;
      after: Row;
    };
    if (!overwriteChanged) {
      throw refuse(
        'row-changed',
        n,
        `has ${column} ${JSON.stringify(found)} now, not ${JSON.stringify(after[column])} as --fix wrote it`,
      );
    }
    expected.set(n, { [column]: found });
    overwritten.push({
      line: n,
      table,
      id: row.id,
      column,
      fixWrote: after[column],
      found,
      restored: row[column],
    });
  }
  return { expected, overwritten };
}

/**
 * Puts the rows of a `--fix` backup back, in one transaction: deleted rows are inserted again
 * (parents first), and each changed row gets back the value of the one column --fix changed.
 *
 * Before BEGIN it refuses the whole file (PreflightBackupError with the line, nothing written):
 * a file that is not such a backup or was changed after --fix wrote it (its end line's SHA-256),
 * an old backup without a header, a bad or missing signature, a backup of another database,
 * any line --fix would not have written (table, fields, columns and their types from the
 * catalog, rules, `__proto__`-style keys), a deleted row whose id is taken again, a changed
 * row that no longer exists, and one whose column no longer holds what --fix wrote (unless
 * `overwriteChanged`). The writes re-check the last two, so a change racing the restore
 * refuses it too.
 */
export async function restorePreflightBackup(
  dataSource: DataSource,
  backupFile: string,
  { key, overwriteChanged = false }: RestoreOptions = {},
): Promise<RestoreResult> {
  await assertPrimary(dataSource, 'restoring a preflight backup');
  const query: Query = (sql, params) => dataSource.query(sql, params);
  const file = path.resolve(backupFile);
  const backup = await readBackup(file, key);
  checkIntegrity(file, backup, key);
  const here = await databaseIdentity(query);
  const from = backup.header.database;
  if (
    from.systemIdentifier !== here.systemIdentifier ||
    from.name !== here.name ||
    from.oid !== here.oid
  ) {
    throw new PreflightBackupError(
      'other-database',
      file,
      `line 1: written on database ${describeIdentity(from)}, this is ${describeIdentity(here)}`,
      1,
    );
  }
  const shape = await fixShape(dataSource, query);
  const seen = new Map<string, number>();
  const lines = backup.entries.map(({ line, value }) => {
    const checked = checkLine(file, shape, line, value);
    const key = JSON.stringify([checked.table, checked.row.id, checked.column ?? null]);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new PreflightBackupError(
        'invalid-backup',
        file,
        `line ${line}: the same row as line ${earlier}`,
        line,
      );
    }
    seen.set(key, line);
    return checked;
  });
  const { expected, overwritten } = await checkAgainstDatabase(
    file,
    query,
    shape,
    lines,
    overwriteChanged,
  );

  const order = (line: BackupLine) => PIXCRAWLER_TABLE_NAMES.indexOf(line.table);
  const inserts = lines.filter((l) => l.action === 'delete').sort((a, b) => order(a) - order(b));
  const updates = lines.filter((l) => l.action === 'update');
  const result: RestoreResult = {
    backupFile: file,
    database: here,
    signed: key !== undefined,
    reinserted: {},
    restored: {},
    overwritten,
  };
  const runner = dataSource.createQueryRunner();
  try {
    await runner.connect();
    await runner.startTransaction();
    for (const entry of inserts) {
      const table = quoteIdentifier(entry.table);
      await runner
        .query(
          `INSERT INTO ${table} SELECT * FROM jsonb_populate_record(NULL::${table}, $1::jsonb)`,
          [JSON.stringify(entry.row)],
        )
        .catch((error: { message?: string; driverError?: { code?: string } }) => {
          const code = error.driverError?.code;
          throw new PreflightBackupError(
            code === '23505' ? 'row-exists' : 'invalid-backup',
            file,
            `line ${entry.line}: ${entry.table} ${JSON.stringify(entry.row.id)} ${
              code === '23505' ? 'exists again' : `cannot be inserted: ${error.message}`
            }`,
            entry.line,
            code,
          );
        });
      result.reinserted[entry.table] = (result.reinserted[entry.table] ?? 0) + 1;
    }
    for (const entry of updates) {
      const table = quoteIdentifier(entry.table);
      const column = quoteIdentifier(entry.column!);
      // Only where the column still holds what the checks above found: a row another session
      // changed since then refuses the restore instead of being overwritten unseen.
      const [, count] = (await runner.query(
        `UPDATE ${table} t SET ${column} = r.${column}
           FROM jsonb_populate_record(NULL::${table}, $1::jsonb) r,
                jsonb_populate_record(NULL::${table}, $2::jsonb) e
          WHERE t.id = r.id AND t.${column} IS NOT DISTINCT FROM e.${column}`,
        [JSON.stringify(entry.row), JSON.stringify(expected.get(entry.line))],
      )) as [unknown, number];
      if (count !== 1) {
        throw new PreflightBackupError(
          'row-changed',
          file,
          `line ${entry.line}: ${entry.table} ${JSON.stringify(entry.row.id)} changed while being restored`,
          entry.line,
        );
      }
      result.restored[entry.table] = (result.restored[entry.table] ?? 0) + 1;
    }
    await runner.commitTransaction();
    return result;
  } catch (error) {
    if (runner.isTransactionActive) await runner.rollbackTransaction().catch(() => undefined);
    throw error;
  } finally {
    await runner.release();
  }
}
