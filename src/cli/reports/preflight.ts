import {
  plannedRepair,
  type PreflightReport,
  type PreflightRule,
  type RestoreResult,
} from '../../upgrade/preflight';

function describeRule(rule: PreflightRule): string {
  switch (rule.kind) {
    case 'foreign-key':
      return `${rule.table}.${rule.column} without a ${rule.referencedTable} row (ON DELETE ${rule.onDelete})`;
    case 'check':
      return `${rule.table}: ${rule.expression} is false`;
    case 'unique':
      return `${rule.table}: duplicate (${rule.columns.join(', ')})`;
  }
}

export function formatPreflightReport(report: PreflightReport): string {
  const lines: string[] = [];
  for (const { rule, count, sampleIds } of report.results) {
    const mark = count === 0 ? 'ok  ' : 'FAIL';
    lines.push(`  ${mark} ${rule.name}: ${describeRule(rule)}`);
    if (count > 0) {
      const more = count > sampleIds.length ? ', …' : '';
      lines.push(`         ${count} row(s), ids ${sampleIds.join(', ')}${more}`);
      lines.push(`         --fix: ${plannedRepair(rule) ?? 'no automatic repair; fix by hand'}`);
    }
  }
  return lines.join('\n');
}

/** What --restore put back, naming every row it overwrote under --force-overwrite-changed. */
export function formatRestoreResult(restored: RestoreResult): string {
  const { database } = restored;
  const lines = [
    `\nRestored from ${restored.backupFile} (written on this database, "${database.name}"; ` +
      `${restored.signed ? 'signature checked' : 'not signed'}):`,
  ];
  for (const [table, count] of Object.entries(restored.reinserted)) {
    lines.push(`  inserted ${count} deleted row(s) back into ${table}`);
  }
  for (const [table, count] of Object.entries(restored.restored)) {
    lines.push(`  reset ${count} changed row(s) of ${table} to their backed-up values`);
  }
  for (const row of restored.overwritten) {
    lines.push(
      `  overwrote ${row.table} ${JSON.stringify(row.id)} (line ${row.line}) because of ` +
        `--force-overwrite-changed: ${row.column} was ${JSON.stringify(row.found)}, not ` +
        `${JSON.stringify(row.fixWrote)} as --fix wrote it; now ${JSON.stringify(row.restored)}`,
    );
  }
  return lines.join('\n');
}
