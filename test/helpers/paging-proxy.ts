import {createServer, type IncomingHttpHeaders, request as httpRequest} from 'node:http'
import {type AddressInfo} from 'node:net'

/**
 * A real HTTP server in front of a real (plain HTTP) registry that pages its
 * lists the way Harbor, GHCR and Docker Hub do: `GET /v2/<name>/tags/list`
 * and `GET /v2/_catalog` answer at most `n` names (default `pageSize`) after
 * `last`, in lexical order, with `Link: <...?n=N&last=X>; rel="next"` while
 * more remain. Everything else is forwarded as it is. The distribution
 * registry 2.8 that the tests run returns every tag in one answer, so
 * without this proxy no test would see a second page.
 */
export interface PagingProxy {
  /** 127.0.0.1:PORT */
  host: string
  url: string
  /** `GET /v2/...tags/list?...` and `_catalog` requests, as received. */
  readonly listRequests: string[]
  stop(): Promise<void>
}

const HOP = [
  'connection',
  'keep-alive',
  'transfer-encoding',
  'proxy-connection',
  'upgrade',
  'te',
  'trailer',
  'content-length',
]

function strip(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const out = {...headers}
  for (const h of HOP) delete out[h]
  return out
}

function upstream(
  target: URL,
  method: string,
  path: string,
  headers: IncomingHttpHeaders,
  body?: Buffer,
): Promise<{status: number; headers: IncomingHttpHeaders; body: Buffer}> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: target.hostname,
        port: target.port,
        method,
        path,
        headers: {...strip(headers), ...(body ? {'content-length': String(body.length)} : {})},
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks)}))
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

export async function startPagingProxy(
  registryUrl: string,
  opts: {pageSize?: number; catalogPageSize?: number} = {},
): Promise<PagingProxy> {
  const target = new URL(registryUrl)
  const pageSize = opts.pageSize ?? 25
  const catalogPageSize = opts.catalogPageSize ?? pageSize
  const listRequests: string[] = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      void (async () => {
        const url = new URL(req.url ?? '/', 'http://proxy')
        const tags = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname)
        const isCatalog = url.pathname === '/v2/_catalog'
        if (req.method === 'GET' && (tags || isCatalog)) {
          listRequests.push(`${url.pathname}${url.search}`)
          // The whole list from the registry (its catalog pages at 1000, far more than the tests hold).
          const all = await upstream(target, 'GET', isCatalog ? '/v2/_catalog?n=1000' : url.pathname, req.headers)
          if (all.status !== 200) {
            res.writeHead(all.status, strip(all.headers))
            res.end(all.body)
            return
          }
          const field = isCatalog ? 'repositories' : 'tags'
          const doc = JSON.parse(all.body.toString('utf8')) as Record<string, unknown>
          const names = [...((doc[field] as string[] | null) ?? [])].sort()
          // A client may ask for fewer per page, not more: the server caps n, as GHCR and Harbor do.
          const cap = isCatalog ? catalogPageSize : pageSize
          const n = Math.max(1, Math.min(cap, Number(url.searchParams.get('n') ?? cap)))
          const last = url.searchParams.get('last')
          const rest = last === null ? names : names.filter((x) => x > last)
          const page = rest.slice(0, n)
          const headers: Record<string, string> = {'content-type': 'application/json'}
          if (rest.length > page.length) {
            headers.link = `<${url.pathname}?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`
          }
          res.writeHead(200, headers)
          res.end(JSON.stringify({...doc, [field]: page}))
          return
        }
        const body = chunks.length > 0 ? Buffer.concat(chunks) : undefined
        const up = await upstream(target, req.method ?? 'GET', req.url ?? '/', req.headers, body)
        const headers = strip(up.headers)
        if (typeof headers.location === 'string' && headers.location.startsWith(target.origin))
          headers.location = headers.location.slice(target.origin.length)
        res.writeHead(up.status, {
          ...headers,
          'content-length': req.method === 'HEAD' ? (up.headers['content-length'] ?? '0') : String(up.body.length),
        })
        res.end(req.method === 'HEAD' ? undefined : up.body)
      })().catch((err: Error) => {
        res.writeHead(502, {'content-type': 'text/plain'})
        res.end(err.message)
      })
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as AddressInfo
  const host = `127.0.0.1:${port}`
  return {
    host,
    url: `http://${host}`,
    listRequests,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections()
        server.close(() => resolve())
      }),
  }
}
