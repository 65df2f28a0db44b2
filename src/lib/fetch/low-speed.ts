import {formatBytes} from '../ui/format.js'

/**
 * curl's --speed-limit/--speed-time: a transfer slower than `bytesPerSecond`
 * for `seconds` in a row is abandoned (and retried with Range like a reset).
 * An idle timeout alone never fires on a server that trickles a byte now and then.
 */
export interface LowSpeed {
  bytesPerSecond: number
  seconds: number
}

/** 1 KiB/s for 30 s: far below any real link, far shorter than a stalled night. */
export const defaultLowSpeed: LowSpeed = {bytesPerSecond: 1024, seconds: 30}

/** The error of an abandoned slow transfer: retryable, naming what was seen. */
export class LowSpeedError extends Error {
  readonly retryable = true
  readonly code = 'ELOWSPEED'
}

/** Counts a transfer's bytes and calls `fail` once it went slower than the limit. */
export interface LowSpeedWatch {
  add(bytes: number): void
  stop(): void
}

/**
 * The clock of a transfer: fails it when fewer than bytesPerSecond x seconds
 * bytes were added in the last `seconds` (checked once a second; the clock
 * starts now, so a slow first byte counts too). Call `stop` when it ends.
 */
export function lowSpeedWatch(limit: LowSpeed, what: string, fail: (err: LowSpeedError) => void): LowSpeedWatch {
  if (limit.bytesPerSecond <= 0) return {add() {}, stop() {}}
  const windowMs = limit.seconds * 1000
  const tickMs = Math.min(1000, windowMs)
  const floor = limit.bytesPerSecond * limit.seconds
  // Bytes per tick, the last window's worth.
  const ticks: number[] = []
  let current = 0
  let elapsed = 0
  let timer: NodeJS.Timeout | undefined = setInterval(() => {
    ticks.push(current)
    current = 0
    elapsed += tickMs
    if (ticks.length > windowMs / tickMs) ticks.shift()
    if (elapsed < windowMs) return
    const seen = ticks.reduce((a, b) => a + b, 0)
    if (seen < floor) {
      stop()
      fail(
        new LowSpeedError(
          `${what}: slower than ${formatBytes(limit.bytesPerSecond)}/s for ${limit.seconds} s (${formatBytes(seen)} in the last ${limit.seconds} s); transfer abandoned`,
        ),
      )
    }
  }, tickMs)
  timer.unref()
  function stop(): void {
    if (timer) clearInterval(timer)
    timer = undefined
  }
  return {
    add(bytes) {
      current += bytes
    },
    stop,
  }
}
