import type { LegacyMismatch } from '../../upgrade/legacy-schema';

export function formatLegacyMismatches(mismatches: LegacyMismatch[]): string {
  return mismatches
    .map((m) => `  - ${m.table}${m.column ? `.${m.column}` : ''}: ${m.problem}`)
    .join('\n');
}
