/** Peak memory of this process while something runs: sampled on a timer and on demand. */
export interface MemoryPeaks {
  /** Resident set size when sampling started. */
  startRss: number;
  peakRss: number;
  peakHeapUsed: number;
  samples: number;
}

export function sampleMemory(intervalMs = 20): { sample(): void; stop(): MemoryPeaks } {
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
  const timer = setInterval(sample, intervalMs);
  return {
    sample,
    stop() {
      clearInterval(timer);
      sample();
      return peaks;
    },
  };
}
