import type { MigrationPlan, PlanStep, PlannedLock, UnrunRead } from '../../migrator/plan';
import { describeOrigin, formatAdoptionReport } from './adoption';
import { formatBytes } from './words';
import { formatPreflightReport } from './preflight';
import { refusalMessage } from './refusals';

/** `plan` as an operator reads it: every statement, its locks, scans and rewrites, in order. */

const number = (n: number) => n.toLocaleString('en-US');

export { formatBytes } from './words';

const WHAT_A_LOCK_BLOCKS: Record<PlannedLock['mode'], string> = {
  'ACCESS EXCLUSIVE': 'blocks reads and writes',
  'SHARE ROW EXCLUSIVE': 'blocks writes',
  SHARE: 'blocks writes',
  'SHARE UPDATE EXCLUSIVE': 'reads and writes go on',
  'ROW SHARE': 'reads and writes go on',
};

function describeLock(lock: PlannedLock): string {
  const size =
    lock.bytes === null
      ? 'new table'
      : `${lock.rowEstimate === null ? 'rows unknown' : `~${number(lock.rowEstimate)} rows`}, ${formatBytes(lock.bytes)}`;
  return `${lock.mode} on ${lock.table} (${size}): ${WHAT_A_LOCK_BLOCKS[lock.mode]}`;
}

/** A statement on one line, cut short when long (a CREATE TABLE runs to many lines). */
const oneLine = (statement: string, width = 150) => {
  const text = statement.replace(/\s+/g, ' ').trim();
  return text.length > width ? `${text.slice(0, width - 3)}...` : text;
};

const WHY_NOT_RUN: Record<UnrunRead['reason'], string> = {
  changes: 'it can change something',
  'beyond-catalog': "it uses more than PostgreSQL's catalog and built-in functions",
  unchecked: 'plan could not check that it changes nothing',
};

function describeStep(step: PlanStep): string[] {
  if (step.notRun) {
    return [
      `       NOT RUN: ${WHY_NOT_RUN[step.notRun.reason]} (${step.notRun.detail});`,
      '       up() got no rows from it, so what follows may differ from what migrate does',
    ];
  }
  const work = [
    step.rewrites ? 'REWRITES the table' : step.scans ? 'scans the table' : 'no scan, no rewrite',
    step.lockTimeout === '0'
      ? 'waits for its lock as long as it takes'
      : `gives up on its lock after ${step.lockTimeout} (retried)`,
  ];
  if (!step.recognised) work.push('statement not recognised: lock assumed');
  const lines = step.locks.map((lock) => `       ${describeLock(lock)}`);
  if (step.locks.length === 0)
    lines.push(`       ${step.creates ? `creates ${step.creates}` : 'locks no existing table'}`);
  lines.push(`       ${work.join('; ')}`);
  return lines;
}

export function formatPlan(plan: MigrationPlan, command: string): string {
  const lines: string[] = [
    `Plan for \`${command}\` (PostgreSQL ${plan.serverVersion}, schema "${plan.schema}"). ` +
      'Nothing has been changed.',
  ];
  // The adoption report names what it found itself.
  if (!plan.adoption) lines.push(`Found: ${describeOrigin(plan.origin)}.`);
  if (plan.adoption) lines.push('', formatAdoptionReport(plan.adoption));
  if (plan.preflight) {
    lines.push(
      '',
      plan.preflight.broken.length === 0
        ? 'Preflight: no existing row breaks the new constraints.'
        : `Preflight: rows break the new constraints, so migrate would refuse to start:\n${formatPreflightReport(plan.preflight)}\nRun \`pixcrawler-db preflight --fix\` first (or repair them by hand).`,
    );
  }
  if (plan.refusal && plan.refusal.reason !== 'rows-break-constraints') {
    lines.push('', `migrate would refuse: ${refusalMessage(plan.refusal)}`);
    return lines.join('\n');
  }
  const steps = plan.migrations.reduce((n, m) => n + m.steps.length, 0);
  if (plan.migrations.length === 0) {
    lines.push('', 'Nothing to migrate: the database is up to date.');
    return lines.join('\n');
  }
  const unrun = plan.migrations.reduce((n, m) => n + m.steps.filter((s) => s.notRun).length, 0);
  lines.push('');
  if (unrun > 0) {
    lines.push(
      `${unrun} read(s) of up() were not run (NOT RUN below), so the plan may differ from what migrate does.`,
    );
  }
  lines.push(
    `${plan.migrations.filter((m) => !m.recordedOnly && m.name !== 'baseline').length} migration(s), ` +
      `${steps} statement(s); each lock wait is bounded by lock_timeout ${plan.lockTimeout} unless said otherwise:`,
  );
  let n = 0;
  for (const migration of plan.migrations) {
    lines.push('');
    if (migration.recordedOnly) {
      lines.push(`${migration.name}: recorded as applied, not run (the tables exist).`);
      continue;
    }
    const title = migration.repair
      ? `${migration.name} again: it is recorded as applied but objects it makes are missing (an interrupted revert?)`
      : migration.name === 'baseline'
        ? 'Baseline conversions, in one transaction, before anything is recorded'
        : `${migration.name}, ${migration.transactional ? 'in one transaction' : 'no transaction: each statement commits on its own'}`;
    lines.push(`${title}:`);
    if (migration.steps.length === 0) lines.push('  (nothing to do here)');
    for (const step of migration.steps) {
      n++;
      lines.push(`  ${String(n).padStart(2)}. ${oneLine(step.statement)}`, ...describeStep(step));
    }
  }
  return lines.join('\n');
}
