import type { Finding, VerificationReport } from '../../inspect/schema-verifier';
import { plural } from './words';

/** The report as an operator reads it: per table, then drift and migrations, then the verdict. */
export function formatVerificationReport(report: VerificationReport): string {
  const lines: string[] = [`Schema "${report.schema}":`];
  const width = Math.max(...report.tables.map((t) => t.name.length), 5);
  const line = (f: Finding, indent = '    ') =>
    `${indent}${f.severity === 'error' ? 'ERROR' : 'WARN '}  ${f.kind} ${f.name}: ${f.message}` +
    (f.recordedBy
      ? `; ${f.recordedBy} makes it and is recorded as applied (an interrupted revert?)`
      : '') +
    (f.repairedByMigrate
      ? '; run `pixcrawler-db migrate` to repair it'
      : f.recordedBy
        ? `; run \`pixcrawler-db revert\` until ${f.recordedBy} is reverted (every step of a ` +
          'revert can run again), then `pixcrawler-db migrate`'
        : '');

  for (const table of report.tables) {
    const own = report.findings.filter((f) => f.table === table.name);
    const errors = own.filter((f) => f.severity === 'error').length;
    const warnings = own.length - errors;
    let verdict: string;
    if (!table.present) verdict = 'MISSING';
    else if (!table.expected) verdict = 'WARN: not described by any entity (left alone)';
    else if (errors > 0)
      verdict = `${plural(errors, 'error')}${warnings ? `, ${plural(warnings, 'warning')}` : ''}`;
    else if (warnings > 0) verdict = `ok, ${plural(warnings, 'warning')}`;
    else verdict = 'ok';
    const counts = table.present
      ? `  (${plural(table.columns, 'column')}, ${plural(table.foreignKeys, 'foreign key')}, ` +
        `${plural(table.indexes, 'index', 'indexes')}, ${plural(table.checks, 'check')})`
      : '';
    lines.push(`  ${table.name.padEnd(width)}  ${verdict}${counts}`);
    for (const finding of own.filter((f) => f.kind !== 'table' || table.present)) {
      if (finding.kind === 'table' && !table.expected) continue;
      lines.push(line(finding));
    }
  }

  if (report.otherTables.length > 0) {
    lines.push(`  Not checked (no entity describes them): ${report.otherTables.join(', ')}`);
  }

  const general = report.findings.filter(
    (f) => f.table === null && f.kind !== 'drift' && f.kind !== 'migrations',
  );
  for (const finding of general) lines.push(line(finding, '  '));

  const drift = report.findings.filter((f) => f.kind === 'drift');
  lines.push('', 'TypeORM drift check (what `typeorm migration:generate` would write):');
  if (drift.length === 0) lines.push('  none');
  for (const finding of drift) {
    // A CREATE TABLE runs to thousands of characters; its start says what it is.
    const sql = finding.name.length > 160 ? `${finding.name.slice(0, 157)}...` : `${finding.name};`;
    lines.push(`  ${finding.severity === 'error' ? 'ERROR' : 'WARN '}  ${sql}`);
    if (finding.severity === 'warning') lines.push(`         (${finding.message})`);
  }

  const migrations = report.findings.filter((f) => f.kind === 'migrations');
  lines.push('', 'Migrations:');
  if (migrations.length === 0) lines.push('  all applied');
  for (const finding of migrations) lines.push(line(finding, '  '));

  lines.push(
    '',
    report.ok
      ? `Verification passed${report.warnings ? ` with ${plural(report.warnings, 'warning')}` : ''}.`
      : `Verification FAILED: ${plural(report.errors, 'error')}, ${plural(report.warnings, 'warning')}.`,
  );
  return lines.join('\n');
}
