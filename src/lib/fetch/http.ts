import {Readable} from 'node:stream'

import type {Got, Response} from 'got'

import type {OpenedStream} from '../content/opener.js'
import {NetworkError} from '../errors.js'
import {withRetry} from './retry.js'
import {type ConnectionOptions, trustedCas} from './tls.js'

export const USER_AGENT = 'airlock/0.1'

/**
 * The got instance every request goes through: keep-alive agents, proxy
 * variables, extra CAs, timeouts. Retries are not got's: they live in
 * `withRetry` so that streams and small requests share one policy.
 */
export async function createHttp(tls: ConnectionOptions = {}): Promise<Got> {
  // got and the proxy agents load here, with the first client: a command that makes no request
  // (verify, inspect, bundle, import nginx) never pays their memory and start-up time.
  const [{default: got}, {agentsFor}, ca] = await Promise.all([
    import('got'),
    import('./proxy.js'),
    trustedCas(tls.caFiles),
  ])
  return got.extend({
    retry: {limit: 0},
    throwHttpErrors: false,
    decompress: false,
    timeout: {connect: 15_000, secureConnect: 15_000, socket: 60_000, response: 60_000},
    headers: {'user-agent': USER_AGENT},
    https: {
      certificateAuthority: ca,
      rejectUnauthorized: !tls.insecure,
    },
    hooks: {
      // Not an init hook: got runs those before it sets the URL, so none would get a proxy.
      beforeRequest: [
        (options) => {
          if (options.url) options.agent = agentsFor(new URL(options.url.toString()))
        },
      ],
      // Redirects go to any host (release downloads, registries' object storage); got drops
      // Authorization and URL credentials when one leaves the origin (test/e2e/redirect-credentials).
      beforeRedirect: [
        (options) => {
          if (options.url) options.agent = agentsFor(new URL(options.url.toString()))
        },
      ],
    },
  })
}

/** A non-success HTTP answer as a NetworkError that `withRetry` understands. */
export function statusError(
  res: Pick<Response, 'statusCode' | 'statusMessage' | 'headers'>,
  url: URL | string,
  what?: string,
): NetworkError {
  const u = new URL(url.toString())
  // What was asked names the URL, and so the host, once: the host is added only where it does not.
  const subject = what ?? redactUrl(u)
  const err = new NetworkError(
    `${subject.includes(u.host) ? '' : `${u.host}: `}${subject}: HTTP ${res.statusCode}${res.statusMessage ? ` ${res.statusMessage}` : ''}`,
    {host: u.host, status: res.statusCode},
  )
  const ra = res.headers['retry-after']
  if (typeof ra === 'string') (err as NetworkError & {retryAfter?: string}).retryAfter = ra
  return err
}

/** A socket or TLS failure as a NetworkError naming the host. */
export function connectionError(err: unknown, url: URL | string): NetworkError {
  const u = new URL(url.toString())
  const e = err as {code?: string; message?: string}
  if (err instanceof NetworkError) return err
  let message = e.message ?? String(err)
  // Node says the address again ("connect ECONNREFUSED 127.0.0.1:1"): the host leads the line once.
  if (message.endsWith(` ${u.host}`)) message = message.slice(0, -u.host.length - 1)
  const code = e.code && e.code !== 'ERR_GOT_REQUEST_ERROR' && !message.includes(e.code) ? ` (${e.code})` : ''
  const ne = new NetworkError(`${u.host}: ${message}${code}`, {host: u.host, cause: err})
  ;(ne as NetworkError & {code?: string}).code = e.code
  return ne
}

/** A URL without user info or query, safe to print. */
export function redactUrl(url: URL | string): string {
  const u = new URL(url.toString())
  u.username = ''
  u.password = ''
  u.search = ''
  return u.toString()
}

/**
 * GET `url` as a stream from byte `offset` (a Range request when > 0).
 * Resolves once the status is known; 2xx only, anything else throws.
 */
export async function openStream(
  http: Got,
  url: string,
  opts: {offset?: number; headers?: Record<string, string>; what?: string} = {},
): Promise<OpenedStream> {
  const offset = opts.offset ?? 0
  const headers: Record<string, string> = {...opts.headers}
  if (offset > 0) headers.range = `bytes=${offset}-`
  const stream = http.stream(url, {headers})
  let res: Response
  try {
    res = await new Promise<Response>((resolve, reject) => {
      stream.once('response', resolve)
      stream.once('error', reject)
    })
  } catch (err) {
    stream.destroy()
    throw connectionError(err, url)
  }
  if (res.statusCode === 416 && offset > 0) {
    stream.destroy()
    // Nothing at `offset`: the caller holds the whole content already (or more, or other bytes),
    // which only it can check; `bytes */N` says how long the content is.
    const m = /^bytes \*\/(\d+)$/.exec(String(res.headers['content-range'] ?? ''))
    return {stream: Readable.from([]), start: offset, total: m ? Number(m[1]) : undefined, url: res.url, pastEnd: true}
  }
  if (res.statusCode < 200 || res.statusCode >= 300) {
    stream.destroy()
    throw statusError(res, url, opts.what)
  }
  const partial = res.statusCode === 206
  let start = 0
  let total: number | undefined
  if (partial) {
    const m = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(String(res.headers['content-range'] ?? ''))
    start = m ? Number(m[1]) : 0
    if (m && m[2] !== '*') total = Number(m[2])
    if (!m || start !== offset) {
      stream.destroy()
      return openStream(http, url, {...opts, offset: 0})
    }
  } else if (res.headers['content-length'] !== undefined) {
    total = Number(res.headers['content-length'])
  }
  return {stream, start, total, url: res.url}
}

/**
 * The size a server gives for `url` (HEAD, Content-Length), for a dry run's
 * plan; undefined when it gives none or refuses HEAD. A 404 or 410 throws as
 * the GET of a pull would (statusError); a socket failure throws too.
 */
export async function headSize(
  http: Got,
  url: string,
  what?: string,
  signal?: AbortSignal,
): Promise<number | undefined> {
  let attempts = 0
  let res: Response
  try {
    // The one retry policy, as the GET of a pull retries.
    res = await withRetry(
      async () => {
        attempts++
        try {
          return await http.head(url)
        } catch (err) {
          throw connectionError(err, url)
        }
      },
      {signal},
    )
  } catch (err) {
    // Named as a pull names its download: the manifest's file:line label, then what went wrong.
    if (err instanceof NetworkError && what && !err.message.includes(what)) {
      const own =
        what.includes(err.host) && err.message.startsWith(`${err.host}: `)
          ? err.message.slice(err.host.length + 2)
          : err.message
      throw new NetworkError(`${what}: ${own}${attempts > 1 ? `; gave up after ${attempts} attempts` : ''}`, {
        host: err.host,
        status: err.status,
        cause: err,
      })
    }
    throw err
  }
  if (res.statusCode === 404 || res.statusCode === 410) throw statusError(res, url, what)
  if (res.statusCode < 200 || res.statusCode >= 300) return undefined
  const n = Number(res.headers['content-length'])
  return res.headers['content-length'] !== undefined && Number.isSafeInteger(n) && n >= 0 ? n : undefined
}
