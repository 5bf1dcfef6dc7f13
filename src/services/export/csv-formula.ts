/** The OWASP formula rule for csv cells; defined beside its SQL twin (manifest-sql.ts). */
export { CSV_FORMULA_TRIGGERS, neutraliseCsvFormula } from '../../repositories/manifest-sql';
