import { parseArgs } from '../../bench/lib/context';
import { scansInPlan } from '../../bench/lib/plans';
import { change, markdownTable, perServerTable, ratio } from '../../bench/lib/report';
import { median, percentile } from '../../bench/lib/timing';

describe('benchmark helpers', () => {
  it('percentile is nearest-rank: p99 of 1..100 is 99, the median of 1..4 is 2', () => {
    const samples = Array.from({ length: 100 }, (_, i) => 100 - i);
    expect(percentile(samples, 99)).toBe(99);
    expect(percentile(samples, 100)).toBe(100);
    expect(median([4, 1, 3, 2])).toBe(2);
    expect(percentile([], 50)).toBeNaN();
  });

  it('ratios keep two significant digits when small and say n/a without a baseline', () => {
    expect(ratio(3, 2)).toBe('1.50x');
    expect(ratio(6, 1840)).toBe('0.0033x');
    expect(ratio(1, 0)).toBe('n/a');
    expect(change(90, 100)).toBe('-10.0%');
    expect(change(120, 100)).toBe('+20.0%');
  });

  it('names every scan of an EXPLAIN (FORMAT JSON) plan by index or table', () => {
    const plan = [
      {
        Plan: {
          'Node Type': 'Limit',
          Plans: [
            { 'Node Type': 'Index Scan', 'Index Name': 'ix_image_crawl_job_id' },
            { 'Node Type': 'Seq Scan', 'Relation Name': 'projects' },
          ],
        },
      },
    ];
    expect(scansInPlan(plan)).toEqual(['Index Scan ix_image_crawl_job_id', 'Seq Scan projects']);
  });

  it("one table from several servers: a server column first, each server's rows in turn", () => {
    const table = (rows: string[][]) => ({ title: 'Export', headers: ['writer', 'vs COPY'], rows });
    expect(
      perServerTable([
        {
          server: 'PostgreSQL 18',
          table: { ...table([['csv', '0.90x']]), notes: ['median of 5'] },
        },
        {
          server: 'PostgreSQL 13',
          table: table([
            ['csv', '0.85x'],
            ['jsonl', '0.80x'],
          ]),
        },
      ]),
    ).toEqual({
      title: 'Export',
      headers: ['server', 'writer', 'vs COPY'],
      rows: [
        ['PostgreSQL 18', 'csv', '0.90x'],
        ['PostgreSQL 13', 'csv', '0.85x'],
        ['PostgreSQL 13', 'jsonl', '0.80x'],
      ],
      notes: ['median of 5'],
    });
  });

  it('escapes pipes in Markdown table cells', () => {
    const text = markdownTable({ title: 't', headers: ['a'], rows: [['x | y']] });
    expect(text).toContain('| x \\| y |');
  });

  it('--quick and --images choose the sizes; a tiny --images is refused', () => {
    expect(parseArgs(['--quick']).images).toBe(20_000);
    expect(parseArgs([]).images).toBe(1_000_000);
    expect(parseArgs(['--images', '200_000']).exportLarge).toBe(200_000);
    expect(() => parseArgs(['--images', '10'])).toThrow(/at least 1000/);
  });
});
