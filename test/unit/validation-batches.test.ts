import { nextBatchSize } from '../../src/services/validation-job.service';

/**
 * A validation job's batches are sized to take about 250 ms each: few statements on a fast
 * server, progress several times a second on any.
 */
describe('nextBatchSize', () => {
  it('sizes the next batch to take about 250 ms at the speed the last one ran', () => {
    expect(nextBatchSize(100_000, 500)).toBe(50_000);
    expect(nextBatchSize(40_000, 100)).toBe(100_000);
  });

  it('grows at most 8-fold per batch, so one fast batch read from cache does not overshoot', () => {
    expect(nextBatchSize(5_000, 1)).toBe(40_000);
    expect(nextBatchSize(40_000, 0)).toBe(320_000);
  });

  it('stays between 1,000 and 1,000,000 images', () => {
    expect(nextBatchSize(5_000, 60_000)).toBe(1_000);
    expect(nextBatchSize(800_000, 10)).toBe(1_000_000);
  });
});
