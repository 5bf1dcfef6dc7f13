/** Peak memory of this process while something runs: sampled on a timer and on demand. */
export interface MemoryPeaks {
  /** Resident set size when sampling started. */
  startRss: number;
  peakRss: number;
  peakHeapUsed: number;
  /**
   * With `collect`: the largest heap still in use right after a forced garbage collection, i.e.
   * what the work actually holds (peak heapUsed also counts garbage V8 has not collected yet).
   */
  peakLiveHeap?: number;
  samples: number;
}

/**
 * Samples process.memoryUsage() every `intervalMs` and whenever `sample()` is called. With
 * `collect` (the process must run with --expose-gc), every 250 ms it forces a full collection
 * first and records the live heap; that slows the work down, so time it in a separate run.
 */
export function sampleMemory(
  intervalMs = 20,
  { collect = false } = {},
): { sample(): void; stop(): MemoryPeaks } {
  const first = process.memoryUsage();
  const peaks: MemoryPeaks = {
    startRss: first.rss,
    peakRss: first.rss,
    peakHeapUsed: first.heapUsed,
    samples: 1,
  };
  const sample = () => {
    const usage = process.memoryUsage();
    peaks.peakRss = Math.max(peaks.peakRss, usage.rss);
    peaks.peakHeapUsed = Math.max(peaks.peakHeapUsed, usage.heapUsed);
    peaks.samples++;
  };
  const gc = (globalThis as { gc?: () => void }).gc;
  if (collect && !gc) throw new Error('sampleMemory({ collect: true }) needs node --expose-gc');
  const live = () => {
    gc!();
    peaks.peakLiveHeap = Math.max(peaks.peakLiveHeap ?? 0, process.memoryUsage().heapUsed);
  };
  const timer = setInterval(sample, intervalMs);
  const collector = collect ? setInterval(live, 250) : undefined;
  return {
    sample,
    stop() {
      clearInterval(timer);
      clearInterval(collector);
      sample();
      if (collect) live();
      return peaks;
    },
  };
}
