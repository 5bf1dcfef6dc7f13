/** Timing and percentile helpers shared by every benchmark. */

/** Milliseconds since an arbitrary origin, sub-millisecond resolution. */
export function now(): number {
  return performance.now();
}

/** Runs `work` and returns its result with how long it took, in milliseconds. */
export async function timed<T>(work: () => Promise<T>): Promise<{ result: T; ms: number }> {
  const start = now();
  const result = await work();
  return { result, ms: now() - start };
}

/** The p-th percentile (0-100) by nearest rank; NaN for no samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export const median = (samples: readonly number[]) => percentile(samples, 50);

/**
 * Calls `work` `warmup` times unmeasured, then until `iterations` samples or `budgetMs` have
 * been spent (at least 3 samples), and returns the latencies in milliseconds.
 */
export async function sample(
  work: () => Promise<unknown>,
  { warmup = 2, iterations = 30, budgetMs = 5_000 } = {},
): Promise<number[]> {
  for (let i = 0; i < warmup; i++) await work();
  const samples: number[] = [];
  const start = now();
  while (samples.length < iterations && (samples.length < 3 || now() - start < budgetMs)) {
    const t = now();
    await work();
    samples.push(now() - t);
  }
  return samples;
}

/** Rows (or jobs) per second. */
export const perSecond = (count: number, ms: number) => (ms > 0 ? (count * 1000) / ms : 0);
