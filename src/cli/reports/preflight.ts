import { plannedRepair, type PreflightReport, type PreflightRule } from '../../upgrade/preflight';

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
