import {describe, expect, it} from 'vitest'

import {IntegrityError, NetworkError} from '../../src/lib/errors.js'
import {isRetryable, parseRetryAfter, retryDelay, withRetry} from '../../src/lib/fetch/retry.js'

const fast = {attempts: 4, baseDelayMs: 1, maxDelayMs: 4}

describe('retry policy', () => {
  it('retries 408, 429, 5xx and connection errors, nothing else', () => {
    for (const status of [408, 429, 500, 502, 503, 504])
      expect(isRetryable(new NetworkError('x', {host: 'h', status}))).toBe(true)
    for (const status of [400, 401, 403, 404])
      expect(isRetryable(new NetworkError('x', {host: 'h', status}))).toBe(false)
    expect(isRetryable(Object.assign(new Error('reset'), {code: 'ECONNRESET'}))).toBe(true)
    expect(isRetryable(new IntegrityError('blob', 'a', 'b'))).toBe(false)
    expect(isRetryable(new Error('plain bug'))).toBe(false)
  })

  it('honours Retry-After in seconds and as a date', () => {
    expect(parseRetryAfter('3')).toBe(3000)
    const d = parseRetryAfter(new Date(Date.now() + 5000).toUTCString())!
    expect(d).toBeGreaterThan(3000)
    expect(d).toBeLessThanOrEqual(5000)
    expect(retryDelay(fast, 1, '0')).toBe(0)
  })

  it('backs off with jitter within the cap', () => {
    for (let a = 1; a < 8; a++) {
      const d = retryDelay({attempts: 9, baseDelayMs: 100, maxDelayMs: 1000}, a)
      const cap = Math.min(1000, 100 * 2 ** (a - 1))
      expect(d).toBeGreaterThanOrEqual(cap / 2)
      expect(d).toBeLessThanOrEqual(cap)
    }
  })

  it('stops at the first non-retryable error and after the last attempt', async () => {
    let calls = 0
    await expect(
      withRetry(
        async () => {
          calls++
          throw new NetworkError('gone', {host: 'h', status: 404})
        },
        {policy: fast},
      ),
    ).rejects.toThrow('gone')
    expect(calls).toBe(1)

    calls = 0
    await expect(
      withRetry(
        async () => {
          calls++
          throw new NetworkError('busy', {host: 'h', status: 503})
        },
        {policy: fast},
      ),
    ).rejects.toThrow('busy')
    expect(calls).toBe(4)

    calls = 0
    const v = await withRetry(
      async (attempt) => {
        calls++
        if (attempt < 3) throw new NetworkError('busy', {host: 'h', status: 503})
        return 'ok'
      },
      {policy: fast},
    )
    expect(v).toBe('ok')
    expect(calls).toBe(3)
  })
})
