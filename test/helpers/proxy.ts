import {
  Agent as HttpAgent,
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  request as httpRequest,
  type ServerResponse,
} from 'node:http'
import {Agent as HttpsAgent, request as httpsRequest} from 'node:https'
import {type AddressInfo} from 'node:net'

export interface FaultProxyOpts {
  /** Flip one byte (XOR 0xff) at this offset of each faulted response body. */
  flipByteAt?: number
  /** Send this many body bytes of each faulted response, then destroy the connection. */
  cutAfterBytes?: number
  /** Answer 503 to every Nth matching request instead of forwarding it. */
  failEvery?: number
  /** Only requests whose path (with query) matches are faulted and counted for failEvery; default all. */
  match?: RegExp
  /** Fault at most this many responses (flip/cut/503 alike); default no limit. */
  times?: number
  /**
   * With failEvery: a request (method and path) answered 503 is forwarded the
   * next time it comes, so every retry gets through. Without it, the retries
   * of clients running side by side can fall into step with the count, so
   * that one request meets the 503 at every attempt.
   */
  spareRetries?: boolean
}

export interface FaultProxy {
  /** http://127.0.0.1:PORT */
  url: string
  /** 127.0.0.1:PORT */
  host: string
  /** Requests received so far (all of them, faulted or not). */
  readonly requests: number
  /** Responses faulted so far. */
  readonly faults: number
  /** `METHOD PATH -> STATUS[ fault]` for every request, in arrival order. */
  readonly log: string[]
  stop(): Promise<void>
}

const HOP = ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade', 'te', 'trailer']

function strip(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = {...headers}
  for (const h of HOP) delete out[h]
  return out
}

/**
 * A plain-HTTP forwarding proxy in front of `target` (http or https, certificates
 * not checked) that injects faults: corrupted bytes, connections cut mid-body,
 * 503s. The client's Host header is passed on and Location headers naming the
 * target are rewritten, so a registry's upload URLs come back through the proxy.
 */
export async function startFaultProxy(target: string, opts: FaultProxyOpts = {}): Promise<FaultProxy> {
  const upstream = new URL(target)
  const tls = upstream.protocol === 'https:'
  const agent = tls ? new HttpsAgent({keepAlive: true, rejectUnauthorized: false}) : new HttpAgent({keepAlive: true})
  const send = tls ? httpsRequest : httpRequest
  const targetOrigin = upstream.origin
  let requests = 0
  let faults = 0
  let matching = 0
  const log: string[] = []
  const refused = new Set<string>()
  let proxyOrigin = ''

  const canFault = () => opts.times === undefined || faults < opts.times

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    requests++
    const path = req.url ?? '/'
    const entry = log.push(`${req.method} ${path}`) - 1
    const matches = opts.match ? opts.match.test(path) : true
    if (matches) matching++
    const key = `${req.method} ${path}`
    const spared = opts.spareRetries === true && refused.delete(key)
    if (matches && opts.failEvery && matching % opts.failEvery === 0 && !spared && canFault()) {
      faults++
      if (opts.spareRetries) refused.add(key)
      log[entry] += ' -> 503 fault'
      req.resume()
      res.writeHead(503, {'content-type': 'application/json'})
      res.end(JSON.stringify({errors: [{code: 'UNAVAILABLE', message: 'injected by the fault proxy'}]}))
      return
    }
    const out = send(
      {host: upstream.hostname, port: upstream.port, method: req.method, path, headers: strip(req.headers), agent},
      (up) => {
        const headers = strip(up.headers)
        const loc = headers.location
        if (typeof loc === 'string' && loc.startsWith(targetOrigin))
          headers.location = proxyOrigin + loc.slice(targetOrigin.length)
        const faultBody =
          matches &&
          (opts.flipByteAt !== undefined || opts.cutAfterBytes !== undefined) &&
          req.method !== 'HEAD' &&
          canFault()
        if (faultBody) faults++
        log[entry] += ` -> ${up.statusCode}${faultBody ? ' fault' : ''}`
        res.writeHead(up.statusCode ?? 502, up.statusMessage, headers)
        if (!faultBody) {
          up.pipe(res)
          return
        }
        let offset = 0
        up.on('data', (chunk: Buffer) => {
          let c = chunk
          if (opts.flipByteAt !== undefined && opts.flipByteAt >= offset && opts.flipByteAt < offset + c.length) {
            c = Buffer.from(c)
            c[opts.flipByteAt - offset] ^= 0xff
          }
          if (opts.cutAfterBytes !== undefined && offset + c.length >= opts.cutAfterBytes) {
            const keep = c.subarray(0, Math.max(0, opts.cutAfterBytes - offset))
            offset += keep.length
            up.destroy()
            // Flush what is allowed, then drop the connection without finishing the body.
            res.write(keep, () => res.socket?.destroy())
            if (keep.length === 0) res.socket?.destroy()
            return
          }
          offset += c.length
          if (!res.write(c)) {
            up.pause()
            res.once('drain', () => up.resume())
          }
        })
        up.on('end', () => res.end())
        up.on('error', () => res.socket?.destroy())
      },
    )
    out.on('error', (err) => {
      log[entry] += ` -> 502 (${err.message})`
      if (!res.headersSent) res.writeHead(502, {'content-type': 'text/plain'}).end(`fault proxy: ${err.message}`)
      else res.socket?.destroy()
    })
    req.pipe(out)
  }

  const server = createServer(handle)
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  server.unref()
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  proxyOrigin = `http://${host}`
  return {
    url: proxyOrigin,
    host,
    get requests() {
      return requests
    },
    get faults() {
      return faults
    },
    log,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
        agent.destroy()
      }),
  }
}
