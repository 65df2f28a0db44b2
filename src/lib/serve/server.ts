import {createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import {createServer as createHttpsServer} from 'node:https'
import type {AddressInfo, Socket} from 'node:net'

import {BUNDLE_FILES} from '../bundle/format/bundle-files.js'
import {isSafeRelativePath, relativePathProblem} from '../content/paths.js'
import {BundleError, FailureError} from '../errors.js'
import {OciArchive} from '../oci/archive.js'
import {parseReference} from '../oci/reference.js'
import {hostComponent} from '../targets/registry/registry-target.js'
import {type Progress, silentProgress} from '../ui/index.js'
import {plural} from '../ui/table.js'
import {openBundleSet} from './bundle-set.js'
import {type CachedFile, cacheFolder, openCached, prepareFiles} from './file-cache.js'
import type {ListenAddress} from './listen.js'
import {bodyProblems, sendBody} from './range.js'
import {handleRegistry, refuseRegistryWrite, registryNotFound} from './registry-api.js'
import {RegistryContent} from './registry-content.js'

export interface ServeOptions {
  /** Base bundles of a delta, in the order given. */
  bases?: string[]
  listen: ListenAddress
  /** PEM certificate and key: serve HTTPS. */
  tls?: {cert: Buffer; key: Buffer}
  /** Where the unpacked files of the `.tar.gz` live (see file-cache.ts). */
  cacheRoot: string
  progress?: Progress
  /** One line per request, after its response ended. */
  onAccess?: (line: string) => void
  /** How long a connection may idle, send its headers, or stall a download (defaults: SERVE_TIMEOUTS). */
  timeouts?: Partial<ServeTimeouts>
}

export interface ServeTimeouts {
  /** A kept-alive connection with no request under way is closed after this. */
  idleMs: number
  /** The whole of a request's headers must arrive within this (then 408 and the connection closed). */
  headersMs: number
  /**
   * A response under way that moves no byte for this long is cut: a client
   * that stopped reading. A slow download that keeps moving is never cut.
   */
  stallMs: number
}

export const SERVE_TIMEOUTS: ServeTimeouts = {idleMs: 5_000, headersMs: 20_000, stallMs: 120_000}

/**
 * Requests one connection may have waiting for their answer (HTTP pipelining,
 * which no registry client or downloader uses); a connection past it is cut.
 */
export const MAX_PIPELINED = 16

/** One image or file the server answers for, and where. */
export type ServedItem =
  | {kind: 'image'; ref: string; digest: string; mediaType: string; paths: string[]}
  | {kind: 'file'; path: string; size: number; sha256: string}

export interface BundleServer {
  /** Every image (at both its names) and file served. */
  items: ServedItem[]
  /** `http(s)://host:port` it answers at. */
  url: string
  images: number
  files: number
  /** The cache folder holding the unpacked files. */
  cache: string
  /** Requests answered so far. */
  readonly requests: number
  /** Stop accepting, let the responses under way finish (at most `graceMs`), then close everything. */
  close(graceMs?: number): Promise<void>
}

/**
 * Serve a bundle in place: verify it (and its bases), unpack its files once
 * into the cache, index `offline-images.tar`, then answer the registry API
 * under `/v2/` and every file at its mirrored path. Resolves once listening.
 */
export async function serveBundle(dir: string, opts: ServeOptions): Promise<BundleServer> {
  const progress = opts.progress ?? silentProgress
  const set = await openBundleSet(dir, opts.bases ?? [])
  const locks = set.lookup.map((b) => b.lock)
  // Bases are unpacked (and verified) first, into the same folder: a delta's import then finds there what it leaves out.
  const cache = await cacheFolder(
    opts.cacheRoot,
    set.unpack.map((b) => b.dir),
  )
  const files = await prepareFiles(set, cache, progress)

  const archives: OciArchive[] = []
  try {
    for (const b of set.lookup) archives.push(await OciArchive.open(await b.parts(BUNDLE_FILES.images)))
  } catch (err) {
    await Promise.all(archives.map((a) => a.close()))
    throw err
  }
  const content = new RegistryContent(archives, locks)
  // A delta's images are whole only with its bases: every digest its lock lists must be in one of the archives.
  const missing = locks.flatMap((l) => l.blobs ?? []).filter((b) => content.blobSize(b.digest) !== b.size)
  if (missing.length > 0) {
    await Promise.all(archives.map((a) => a.close()))
    throw new BundleError(
      `${dir}: ${plural(missing.length, 'blob')} its bundle.json lists ${missing.length === 1 ? 'is' : 'are'} in neither it nor its bases`,
      {details: missing.slice(0, 20).map((b) => `${b.digest} (${b.mediaType}, ${b.size} bytes)`)},
    )
  }

  let requests = 0
  const waiting = new WeakMap<Socket, number>()
  const handler = (req: IncomingMessage, res: ServerResponse): void => {
    const started = process.hrtime.bigint()
    const socket = req.socket
    const queued = (waiting.get(socket) ?? 0) + 1
    if (queued > MAX_PIPELINED) {
      socket.destroy()
      return
    }
    waiting.set(socket, queued)
    // Taken now: a socket that went away no longer knows its peer.
    const client = socket.remoteAddress ?? '-'
    let answered = false
    const done = (): void => {
      if (answered) return
      answered = true
      waiting.set(socket, (waiting.get(socket) ?? 1) - 1)
    }
    res.once('finish', done)
    res.once('close', () => {
      done()
      requests++
      if (!opts.onAccess) return
      const ms = Number(process.hrtime.bigint() - started) / 1e6
      const sent = res.writableFinished ? String(res.getHeader('content-length') ?? '-') : 'aborted'
      const problem = bodyProblems.get(res)
      opts.onAccess(
        `${client} "${req.method} ${logText(req.url ?? '')} HTTP/${req.httpVersion}" ${res.statusCode} ${sent} ${ms.toFixed(1)}ms${problem ? ` error="${logText(problem)}"` : ''}`,
      )
    })
    route(content, files, req, res).catch((err: unknown) => {
      if (!res.headersSent) {
        bodyProblems.set(res, (err as Error).message)
        res.statusCode = 500
        res.setHeader('Content-Type', 'text/plain; charset=utf-8')
        res.end('internal error\n')
      } else res.destroy(err as Error)
    })
  }
  const t = {...SERVE_TIMEOUTS, ...opts.timeouts}
  // Node checks the headers' deadline every connectionsCheckingInterval: often enough for it to hold.
  const common = {
    headersTimeout: t.headersMs,
    requestTimeout: t.headersMs,
    keepAliveTimeout: t.idleMs,
    connectionsCheckingInterval: Math.min(1000, t.headersMs / 2),
  }
  const server: Server = opts.tls
    ? createHttpsServer({...common, cert: opts.tls.cert, key: opts.tls.key}, handler)
    : createHttpServer(common, handler)
  // A socket that moves no byte either way for stallMs is closed: a client that stopped reading leaves the last
  // write unfinished, so nothing moves. A slow one that keeps reading moves bytes and is never cut (large blobs to
  // slow nodes); the request itself is bounded by requestTimeout (GET and HEAD carry no body).
  server.setTimeout(t.stallMs)
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        new FailureError(
          `cannot listen on ${opts.listen.text}: ${err.code === 'EADDRINUSE' ? 'the address is in use' : err.message}`,
          {cause: err},
        ),
      )
    })
    server.listen(opts.listen.port, opts.listen.host, () => resolve())
  }).catch(async (err: unknown) => {
    await Promise.all(archives.map((a) => a.close()))
    throw err
  })
  const addr = server.address() as AddressInfo
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
  const url = `${opts.tls ? 'https' : 'http'}://${host}:${addr.port}`
  const items: ServedItem[] = []
  const refs = new Set<string>()
  for (const img of locks.flatMap((l) => l.images)) {
    if (refs.has(img.ref)) continue
    refs.add(img.ref)
    const ref = parseReference(img.ref)
    const at = ref.tag ? `:${ref.tag}` : `@${img.digest}`
    items.push({
      kind: 'image',
      ref: img.ref,
      digest: img.digest,
      mediaType: img.mediaType,
      paths: [`${ref.repository}${at}`, `${hostComponent(ref.registry)}/${ref.repository}${at}`],
    })
  }
  for (const [path, f] of files) items.push({kind: 'file', path, size: f.size, sha256: f.sha256})
  const imageCount = refs.size

  return {
    items,
    url,
    images: imageCount,
    files: files.size,
    cache,
    get requests() {
      return requests
    },
    async close(graceMs = 10_000) {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()))
      server.closeIdleConnections()
      const timer = setTimeout(() => server.closeAllConnections(), graceMs)
      await closed
      clearTimeout(timer)
      await Promise.all(archives.map((a) => a.close()))
    },
  }
}

/** A client's URL or a problem in the access log: one line, its `"` and `\\` escaped, control characters as \\xNN. */
export function logText(text: string): string {
  return text.replace(/["\\\x00-\x1f\x7f-\x9f]/g, (c) =>
    c === '"' || c === '\\' ? `\\${c}` : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  )
}

/**
 * The path's segments, percent-decoded and checked: undefined for bad
 * encoding, an encoded `/`, or a segment the one path check refuses (`.`,
 * `..`, NUL, backslash), none of which names anything in a bundle. Empty
 * segments pass (`/v2/`); a file's path is checked whole below.
 */
function decodePath(raw: string): string | undefined {
  if (!raw.startsWith('/')) return undefined
  const out: string[] = []
  for (const seg of raw.split('/')) {
    let s: string
    try {
      s = decodeURIComponent(seg)
    } catch {
      return undefined
    }
    if (s.includes('/') || (s !== '' && relativePathProblem(s) !== undefined)) return undefined
    out.push(s)
  }
  return out.join('/')
}

async function route(
  content: RegistryContent,
  files: Map<string, CachedFile>,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const raw = req.url ?? '/'
  const q = raw.indexOf('?')
  const rawPath = q === -1 ? raw : raw.slice(0, q)
  const params = new URLSearchParams(q === -1 ? '' : raw.slice(q + 1))
  const isRegistry = rawPath === '/v2' || rawPath.startsWith('/v2/')
  const reading = req.method === 'GET' || req.method === 'HEAD'
  if (!reading) {
    if (isRegistry) return refuseRegistryWrite(req, res)
    res.statusCode = 405
    res.setHeader('Allow', 'GET, HEAD')
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    res.end('405 method not allowed: this server is read-only\n')
    return
  }
  const path = decodePath(rawPath)
  if (isRegistry) {
    if (path === undefined) return registryNotFound(req, res)
    return handleRegistry(content, req, res, path, params)
  }
  const rel = path?.slice(1)
  const file = rel !== undefined && isSafeRelativePath(rel) ? files.get(rel) : undefined
  if (!file) {
    res.statusCode = 404
    const text = Buffer.from('404 not found\n')
    res.setHeader('Content-Type', 'text/plain; charset=utf-8')
    res.setHeader('Content-Length', text.length)
    res.end(req.method === 'HEAD' ? undefined : text)
    return
  }
  sendBody(req, res, {
    size: file.size,
    headers: {'Content-Type': file.contentType, ETag: `"${file.sha256}"`},
    open: (start, end) => openCached(file, start, end),
  })
}
