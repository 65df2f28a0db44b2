import type {Got} from 'got'

import {FailureError} from '../errors.js'
import {openStream, redactUrl} from './http.js'
import {type RetryPolicy, withRetry} from './retry.js'

/**
 * GET a small document (a checksum file, a Helm repository index) whole,
 * with the shared retry policy, redirects and proxies of `http`. The body
 * is capped so that a wrong URL pointing at a large file fails fast.
 */
export async function fetchSmall(
  http: Got,
  url: string,
  opts: {what: string; maxBytes: number; policy?: RetryPolicy; signal?: AbortSignal},
): Promise<Buffer> {
  return withRetry(
    async () => {
      const opened = await openStream(http, url, {what: opts.what})
      if (opened.total !== undefined && opened.total > opts.maxBytes) {
        opened.stream.destroy()
        throw new FailureError(
          `${opts.what} (${redactUrl(url)}) is ${opened.total} bytes, more than the ${opts.maxBytes} expected`,
        )
      }
      const chunks: Buffer[] = []
      let n = 0
      for await (const chunk of opened.stream) {
        n += (chunk as Buffer).length
        if (n > opts.maxBytes) {
          opened.stream.destroy()
          throw new FailureError(`${opts.what} (${redactUrl(url)}) is more than the ${opts.maxBytes} bytes expected`)
        }
        chunks.push(chunk as Buffer)
      }
      if (opened.total !== undefined && n < opened.total) {
        // A short body is a broken transfer: worth another try.
        throw Object.assign(new Error(`${opts.what}: connection closed after ${n} of ${opened.total} bytes`), {
          retryable: true,
        })
      }
      return Buffer.concat(chunks)
    },
    {policy: opts.policy, signal: opts.signal},
  )
}
