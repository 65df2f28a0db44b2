import {setTimeout as sleep} from 'node:timers/promises'

import {isAirlockError} from '../errors.js'

/**
 * The one retry policy: exponential backoff with full jitter on 408, 429,
 * 5xx and connection errors, honouring Retry-After. 401/403/404 and
 * integrity errors are not retried here.
 */
export interface RetryPolicy {
  /** Total attempts, the first included. */
  attempts: number
  baseDelayMs: number
  maxDelayMs: number
}

export const defaultRetryPolicy: RetryPolicy = {attempts: 5, baseDelayMs: 250, maxDelayMs: 8000}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
  'ERR_GOT_REQUEST_ERROR',
])

export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500
}

/** An error that carries an HTTP status or a socket error code worth another try. */
export function isRetryable(err: unknown): boolean {
  const e = err as {status?: number; code?: string; name?: string; retryable?: boolean; cause?: unknown; kind?: string}
  if (typeof e?.retryable === 'boolean') return e.retryable
  if (isAirlockError(err)) {
    if (err.kind === 'integrity' || err.kind === 'usage' || err.kind === 'manifest') return false
    if (typeof e.status === 'number') return isRetryableStatus(e.status)
    return e.cause === undefined ? false : isRetryable(e.cause)
  }
  if (typeof e?.status === 'number') return isRetryableStatus(e.status)
  if (e?.code && RETRYABLE_CODES.has(e.code)) return true
  if (e?.name === 'TimeoutError' || e?.code === 'ETIMEDOUT') return true
  return false
}

/** Milliseconds to wait before attempt `attempt + 1` (attempt counts from 1). */
export function retryDelay(policy: RetryPolicy, attempt: number, retryAfter?: string | null): number {
  const fromHeader = parseRetryAfter(retryAfter)
  if (fromHeader !== undefined) return Math.min(fromHeader, policy.maxDelayMs * 4)
  const cap = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1))
  return Math.round(cap / 2 + Math.random() * (cap / 2))
}

export function parseRetryAfter(value?: string | null): number | undefined {
  if (!value) return undefined
  const secs = Number(value)
  if (Number.isFinite(secs) && secs >= 0) return secs * 1000
  const when = Date.parse(value)
  if (!Number.isNaN(when)) return Math.max(0, when - Date.now())
  return undefined
}

/**
 * Run `fn` until it succeeds, fails with an error that is not retryable, or
 * runs out of attempts. `fn` gets the attempt number (from 1).
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  opts: {
    policy?: RetryPolicy
    onRetry?: (err: unknown, attempt: number, delayMs: number) => void
    signal?: AbortSignal
  } = {},
): Promise<T> {
  const policy = opts.policy ?? defaultRetryPolicy
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (attempt >= policy.attempts || !isRetryable(err) || opts.signal?.aborted) throw err
      const delay = retryDelay(policy, attempt, (err as {retryAfter?: string}).retryAfter)
      opts.onRetry?.(err, attempt, delay)
      await sleep(delay, undefined, {signal: opts.signal})
    }
  }
}
