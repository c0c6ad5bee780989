/**
 * The process's peak memory while a test runs (the server runs in the test's process): sampled every
 * 10 ms, so a short spike can slip between samples, but the allocations these tests look for last longer.
 */
export interface MemoryWatch {
  /** Peak growth of heap plus array buffers over the start, in bytes. */
  readonly peakGrowth: number
  stop (): number
}

const used = (): number => {
  const usage = process.memoryUsage()
  return usage.heapUsed + usage.arrayBuffers
}

export const watchMemory = (): MemoryWatch => {
  global.gc?.()
  const base = used()
  let peak = base
  const timer = setInterval(() => { peak = Math.max(peak, used()) }, 10)
  return {
    get peakGrowth () { return Math.max(peak, used()) - base },
    stop () {
      clearInterval(timer)
      peak = Math.max(peak, used())
      return peak - base
    },
  }
}

export const MiB = 1024 * 1024
