import { readFileSync, writeFileSync } from 'node:fs'

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

const kilobytes = (pid: number, field: 'VmHWM' | 'VmRSS'): number => {
  const match = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return match === null ? 0 : Number(match[1])
}

/**
 * The most memory a process (a server process, or this one for an in-process server) held while a test
 * ran: Linux's high-water mark of resident memory, reset when the watch starts, so that a peak during a
 * stall of the event loop counts too, which a sampling timer would miss.
 */
export class PeakMemory {
  readonly #pid: number
  readonly startMb: number

  constructor (pid: number = process.pid) {
    this.#pid = pid
    // "5" resets the high-water mark to the current resident size (Linux 4.0 and later).
    writeFileSync(`/proc/${pid}/clear_refs`, '5')
    this.startMb = kilobytes(pid, 'VmRSS') / 1024
  }

  /** The peak since the watch started, in MiB. */
  get peakMb (): number {
    return kilobytes(this.#pid, 'VmHWM') / 1024
  }

  /** How far the peak rose above the resident size at the start, in MiB. */
  get growthMb (): number {
    return this.peakMb - this.startMb
  }
}
