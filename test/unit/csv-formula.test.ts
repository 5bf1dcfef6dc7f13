import { CSV_FORMULA_TRIGGERS, neutraliseCsvFormula } from '../../src/services/export/csv-formula';

describe('neutraliseCsvFormula (OWASP CSV injection)', () => {
  it.each(CSV_FORMULA_TRIGGERS)(
    'prefixes a cell starting with %j with a single quote',
    (trigger) => {
      expect(neutraliseCsvFormula(`${trigger}HYPERLINK("http://evil")`)).toBe(
        `'${trigger}HYPERLINK("http://evil")`,
      );
    },
  );

  it.each(['cat.jpg', 'https://example.com/=x', '', "'already", ' =spaced', '1+1', 'a@b'])(
    'leaves %j unchanged',
    (value) => {
      expect(neutraliseCsvFormula(value)).toBe(value);
    },
  );

  it('is idempotent on its own output only in the sense that a neutralised cell starts with a quote', () => {
    expect(neutraliseCsvFormula(neutraliseCsvFormula('=1+1'))).toBe("'=1+1");
  });
});
