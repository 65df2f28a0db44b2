import {randomBytes} from 'node:crypto'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {Readable} from 'node:stream'

import type {Descriptor} from '../../src/lib/content/descriptor.js'
import {isDigest, sha256Digest} from '../../src/lib/content/digest.js'
import {bareMediaType, isForeignLayer} from '../../src/lib/content/media-types.js'
import {parseManifestJson} from '../../src/lib/graph/parse.js'
import {handleRegistry} from '../../src/lib/serve/registry-api.js'
import type {RegistryContent} from '../../src/lib/serve/registry-content.js'

// A FAKE distribution registry, in process, for the faults a real registry
// cannot be made to produce on demand: a token that expires after N uses, a
// 429 or 503 with Retry-After, a 5xx on the Nth upload PATCH, a connection
// reset in the middle of a body, an answer whose Docker-Content-Digest is not
// the content's. It keeps what the client and push need of the distribution
// spec (uploads with mounts, chunks and digest checks; manifests checked for
// their blobs; tags and catalog paged with Link) so that the registry client,
// push, the registry sink and mirror get unit tests without Debian servers.
// The read side is serve/'s (handleRegistry) over this fake's memory.
//
// It is not the reference: the e2e suite (test/e2e/registry-*.test.ts,
// mirror, import registry) keeps testing against the real distribution
// registry, and a behaviour seen only here is not evidence that a registry
// does it.

export interface FakeFault {
  /** Only requests with this method (default: any). */
  method?: string
  /** Tested against the path (query included): `/blobs/uploads/`, `/manifests/1.0`. */
  path: RegExp
  /** Which matching requests get the fault, counting from 1 (default: every one). */
  nth?: number[]
  /**
   * `status`: answered instead, with an OCI error body (and Retry-After when given);
   * `reset`: the connection is cut (a GET blob after half its bytes, anything else before an answer);
   * `wrong-digest`: the answer's Docker-Content-Digest names other content; `no-digest`: it has none.
   */
  action: {status: number; retryAfter?: string; code?: string} | 'reset' | 'wrong-digest' | 'no-digest'
}

export interface FakeRegistryOptions {
  /** `basic`: Basic credentials on every request; `bearer`: tokens from `/token` with Basic credentials. */
  auth?: 'none' | 'basic' | 'bearer'
  username?: string
  password?: string
  /** A bearer token is refused (401) after this many requests that used it: it "expired" mid-run. */
  tokenUses?: number
  /** Sent as OCI-Chunk-Min-Length when an upload starts. */
  chunkMinLength?: number
  /** Answer the referrers API (default true); false answers 404 as distribution 2.8 does. */
  referrersApi?: boolean
  faults?: FakeFault[]
}

export interface FakeRequest {
  method: string
  /** Path and query. */
  url: string
  status: number
  /** The scheme of the Authorization sent (`basic`, `bearer`), or '' for none. */
  auth: string
  /** The Range asked for, when one was. */
  range?: string
}

interface Repo {
  name: string
  tags: Map<string, string>
  /** Digests of the blobs and manifests linked into the repository. */
  blobs: Set<string>
  manifests: Set<string>
}

interface Upload {
  repo: string
  chunks: Buffer[]
  size: number
}

/** One request, its body read before anything answers it (a 401 or a fault never leaves a body half sent). */
interface Call {
  req: IncomingMessage
  res: ServerResponse
  u: URL
  body: Buffer
}

interface Token {
  scopes: Set<string>
  uses: number
}

const API_VERSION = 'registry/2.0'
const SERVICE = 'fake-registry'

function ociError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): void {
  const body = Buffer.from(JSON.stringify({errors: [{code, message}]}))
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': String(body.length),
    'docker-distribution-api-version': API_VERSION,
    ...headers,
  })
  res.end(body)
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** Read about half of a body whose length the request declares (at least one chunk), then stop. */
async function readHalf(req: IncomingMessage): Promise<void> {
  const half = Math.floor(Number(req.headers['content-length'] ?? 0) / 2)
  let n = 0
  for await (const c of req) {
    n += (c as Buffer).length
    if (n >= half) break
  }
}

/** The scope a request needs: `repository:<name>:pull` to read, `pull,push` to write. */
function scopesNeeded(method: string, path: string, query: URLSearchParams): string[] {
  if (path === '/v2/' || path === '/v2') return []
  if (path === '/v2/_catalog') return ['registry:catalog:*']
  const m = /^\/v2\/(.+?)\/(?:manifests|blobs|tags|referrers)\//.exec(path)
  if (!m) return []
  const write = method !== 'GET' && method !== 'HEAD'
  const out = [`repository:${m[1]}:${write ? 'pull,push' : 'pull'}`]
  const from = query.get('from')
  if (query.get('mount') && from) out.push(`repository:${from}:pull`)
  return out
}

/** Whether granted scopes cover a needed one (`pull,push` covers `pull`). */
function covers(granted: Set<string>, needed: string): boolean {
  const i = needed.lastIndexOf(':')
  const name = needed.slice(0, i)
  const actions = needed.slice(i + 1).split(',')
  const have = new Set<string>()
  for (const g of granted) {
    const j = g.lastIndexOf(':')
    if (g.slice(0, j) === name) for (const a of g.slice(j + 1).split(',')) have.add(a)
  }
  return actions.every((a) => have.has(a) || have.has('*'))
}

export class FakeRegistry {
  /** 127.0.0.1:PORT */
  host = ''
  url = ''
  /** Every request answered, in order (the token endpoint's too). */
  readonly requests: FakeRequest[] = []
  /** Token requests: the user ('' anonymous) and the scopes asked for. */
  readonly tokenRequests: {user: string; scopes: string[]; ok: boolean}[] = []
  readonly blobs = new Map<string, Buffer>()
  readonly manifests = new Map<string, {bytes: Buffer; mediaType: string}>()
  readonly repos = new Map<string, Repo>()
  private readonly uploads = new Map<string, Upload>()
  private readonly tokens = new Map<string, Token>()
  private readonly faultHits = new Map<FakeFault, number>()
  private server?: Server

  constructor(readonly opts: FakeRegistryOptions = {}) {}

  get username(): string | undefined {
    return this.opts.auth && this.opts.auth !== 'none' ? (this.opts.username ?? 'fake') : undefined
  }

  get password(): string | undefined {
    return this.opts.auth && this.opts.auth !== 'none' ? (this.opts.password ?? 'fake-password') : undefined
  }

  /** Add faults while running (each counts its own matching requests from now). */
  addFault(fault: FakeFault): void {
    ;(this.opts.faults ??= []).push(fault)
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) ociError(res, 500, 'UNKNOWN', String(err))
        else res.destroy()
      })
    })
    // Idle connections stay open, as distribution's (Go's default): Node's 5 s would close one under a
    // client in this same process whose event loop was busy, a reset no registry sends.
    server.keepAliveTimeout = 0
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => resolve())
    })
    this.server = server
    const {port} = server.address() as AddressInfo
    this.host = `127.0.0.1:${port}`
    this.url = `http://${this.host}`
    return this
  }

  stop(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.server) return resolve()
      this.server.close(() => resolve())
      this.server.closeAllConnections()
    })
  }

  repo(name: string): Repo {
    let r = this.repos.get(name)
    if (!r) {
      r = {name, tags: new Map(), blobs: new Set(), manifests: new Set()}
      this.repos.set(name, r)
    }
    return r
  }

  /** Put content straight into a repository (fixtures that need no upload). */
  seedBlob(repository: string, bytes: Buffer): string {
    const digest = sha256Digest(bytes)
    this.blobs.set(digest, bytes)
    this.repo(repository).blobs.add(digest)
    return digest
  }

  seedManifest(repository: string, bytes: Buffer, mediaType: string, tag?: string): string {
    const digest = sha256Digest(bytes)
    this.manifests.set(digest, {bytes, mediaType})
    const r = this.repo(repository)
    r.manifests.add(digest)
    if (tag) r.tags.set(tag, digest)
    return digest
  }

  /** Requests matching a method and a path pattern, from the log. */
  count(method: string, path: RegExp): number {
    return this.requests.filter((r) => r.method === method && path.test(r.url)).length
  }

  private fault(method: string, url: string): FakeFault['action'] | undefined {
    for (const f of this.opts.faults ?? []) {
      if ((f.method && f.method !== method) || !f.path.test(url)) continue
      const n = (this.faultHits.get(f) ?? 0) + 1
      this.faultHits.set(f, n)
      if (!f.nth || f.nth.includes(n)) return f.action
    }
    return undefined
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET'
    const u = new URL(req.url ?? '/', 'http://fake.invalid')
    const entry: FakeRequest = {
      method,
      url: `${u.pathname}${u.search}`,
      status: 0,
      auth: (/^(\w+)\s/.exec(req.headers.authorization ?? '')?.[1] ?? '').toLowerCase(),
      range: req.headers.range,
    }
    this.requests.push(entry)
    // The status is logged as the head goes out (before the client can read it); a connection cut before an answer stays at 0.
    const head = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse
    res.writeHead = ((...args: unknown[]) => {
      entry.status = args[0] as number
      return head(...args)
    }) as typeof res.writeHead
    if (u.pathname === '/token') return this.token(req, res, u)
    const hasBody = method !== 'GET' && method !== 'HEAD'
    const challenge = this.challenge(req, method, u)
    if (challenge !== undefined) {
      // Read (and drop) the body first, so the client sees the 401 and not a broken pipe.
      if (hasBody) await readBody(req)
      return ociError(res, 401, 'UNAUTHORIZED', 'authentication required', {'www-authenticate': challenge})
    }
    const fault = this.fault(method, entry.url)
    if (fault === 'reset' && !(method === 'GET' && /\/blobs\/sha256:/.test(u.pathname))) {
      // Cut in the middle of the request's body (before the answer when it has none): nothing of it is kept.
      if (hasBody) await readHalf(req)
      req.socket.destroy()
      return
    }
    const body = hasBody ? await readBody(req) : Buffer.alloc(0)
    if (!u.pathname.startsWith('/v2')) return ociError(res, 404, 'NAME_UNKNOWN', 'not a registry path')
    if (typeof fault === 'object') {
      return ociError(
        res,
        fault.status,
        fault.code ?? (fault.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE'),
        'a fault of the fake registry',
        fault.retryAfter ? {'retry-after': fault.retryAfter} : {},
      )
    }
    if (fault === 'wrong-digest' || fault === 'no-digest') {
      // The Docker-Content-Digest of this answer, set with setHeader or in writeHead (which a plain end() calls too).
      const other = (d: unknown) => sha256Digest(`not ${String(d)}`)
      const writeHead = res.writeHead.bind(res) as (...args: unknown[]) => ServerResponse
      res.writeHead = ((...args: unknown[]) => {
        const h = args.find((a): a is Record<string, string> => typeof a === 'object' && a !== null)
        if (h?.['docker-content-digest']) {
          if (fault === 'wrong-digest') h['docker-content-digest'] = other(h['docker-content-digest'])
          else delete h['docker-content-digest']
        }
        const set = res.getHeader('docker-content-digest')
        if (set !== undefined) {
          if (fault === 'wrong-digest') res.setHeader('docker-content-digest', other(set))
          else res.removeHeader('docker-content-digest')
        }
        return writeHead(...args)
      }) as typeof res.writeHead
    }
    res.setHeader('docker-distribution-api-version', API_VERSION)
    await this.route({req, res, u, body}, fault === 'reset')
  }

  /** Auth as distribution does it: the WWW-Authenticate challenge (with the scopes needed) of a 401, or undefined to go on. */
  private challenge(req: IncomingMessage, method: string, u: URL): string | undefined {
    const auth = this.opts.auth ?? 'none'
    if (auth === 'none') return undefined
    const header = req.headers.authorization ?? ''
    if (auth === 'basic') {
      const ok = header === `Basic ${Buffer.from(`${this.username}:${this.password}`).toString('base64')}`
      return ok ? undefined : `Basic realm="${SERVICE}"`
    }
    const needed = scopesNeeded(method, u.pathname, u.searchParams)
    const token = /^Bearer (\S+)$/.exec(header)?.[1]
    const t = token ? this.tokens.get(token) : undefined
    if (t && this.opts.tokenUses !== undefined && t.uses >= this.opts.tokenUses) this.tokens.delete(token!)
    else if (t && needed.every((s) => covers(t.scopes, s))) {
      t.uses++
      return undefined
    }
    const scope = needed.length > 0 ? `,scope="${needed.join(' ')}"` : ''
    return `Bearer realm="${this.url}/token",service="${SERVICE}"${scope}`
  }

  /** The token endpoint: Basic credentials of the one user, every scope asked for granted. */
  private token(req: IncomingMessage, res: ServerResponse, u: URL): void {
    const h = req.headers.authorization ?? ''
    const raw = /^Basic (\S+)$/i.exec(h) ? Buffer.from(h.slice(6), 'base64').toString('utf8') : undefined
    const user = raw?.slice(0, raw.indexOf(':')) ?? ''
    const ok = raw === `${this.username}:${this.password}`
    const scopes = u.searchParams
      .getAll('scope')
      .flatMap((s) => s.split(' '))
      .filter(Boolean)
    this.tokenRequests.push({user, scopes, ok})
    if (!ok || u.searchParams.get('service') !== SERVICE) {
      ociError(
        res,
        401,
        'UNAUTHORIZED',
        raw === undefined ? 'authentication required' : 'invalid username or password',
        {'www-authenticate': 'Basic realm="fake-token"'},
      )
      return
    }
    const value = randomBytes(16).toString('hex')
    this.tokens.set(value, {scopes: new Set(scopes), uses: 0})
    const body = Buffer.from(JSON.stringify({token: value, expires_in: 300}))
    res.writeHead(200, {'content-type': 'application/json', 'content-length': String(body.length)})
    res.end(body)
  }

  private async route(call: Call, cut: boolean): Promise<void> {
    const {req, res, u} = call
    const method = req.method ?? 'GET'
    const path = u.pathname
    const uploads = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(path)
    if (uploads) return this.upload(call, uploads[1], uploads[2])
    const manifest = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path)
    if (manifest && method === 'PUT') return this.putManifest(call, manifest[1], manifest[2])
    if (method !== 'GET' && method !== 'HEAD')
      return ociError(res, 405, 'UNSUPPORTED', `${method} ${path} is not supported by the fake`)
    if (this.opts.referrersApi === false && /\/referrers\//.test(path))
      return ociError(res, 404, 'NAME_UNKNOWN', 'no referrers API')
    const name = /^\/v2\/(.+)\/(?:manifests|blobs|referrers|tags)\//.exec(path)?.[1]
    await handleRegistry(this.contentFor(name, cut ? res : undefined), req, res, path, u.searchParams)
  }

  /**
   * serve/'s read side over this memory, bound to the repository asked
   * about: a blob or manifest is there only when linked into it, as in
   * distribution. With `cut`, a blob's answer stops after half its bytes.
   */
  private contentFor(name: string | undefined, cut?: ServerResponse): RegistryContent {
    const repo = name === undefined ? undefined : this.repos.get(name)
    const content: Pick<
      RegistryContent,
      'repository' | 'repositoryNames' | 'manifest' | 'blobSize' | 'openBlob' | 'referrersOf'
    > = {
      repository: (n) => (repo && n === repo.name ? {name: repo.name, tags: repo.tags} : undefined),
      repositoryNames: () => [...this.repos.keys()].sort(),
      manifest: async (digest) => (repo?.manifests.has(digest) ? this.manifests.get(digest) : undefined),
      blobSize: (digest) =>
        repo && (repo.blobs.has(digest) || repo.manifests.has(digest)) ? this.bytesOf(digest)?.length : undefined,
      openBlob: (digest, start, end) => {
        const bytes = this.bytesOf(digest)!.subarray(start, end + 1)
        if (!cut) return Readable.from([bytes])
        return Readable.from(
          (async function* () {
            yield bytes.subarray(0, Math.floor(bytes.length / 2))
            // The connection closed after those bytes, cleanly (FIN) and a moment later: a reset could
            // make the client's kernel drop bytes it had received, and the pause lets it keep them.
            await new Promise((resolve) => setTimeout(resolve, 100))
            await new Promise<void>((resolve) => {
              cut.once('close', resolve)
              cut.socket?.end()
            })
          })(),
        )
      },
      referrersOf: async (subject) => {
        const out: Descriptor[] = []
        for (const d of repo?.manifests ?? []) {
          const m = this.manifests.get(d)!
          const parsed = parseManifestJson(m.bytes)
          const doc = parsed.kind === 'index' ? parsed.index : parsed.manifest
          if (doc.subject?.digest !== subject) continue
          const artifactType =
            doc.artifactType ?? (parsed.kind === 'manifest' ? parsed.manifest.config?.mediaType : undefined)
          out.push({
            mediaType: m.mediaType,
            digest: d,
            size: m.bytes.length,
            ...(artifactType ? {artifactType} : {}),
            ...(doc.annotations ? {annotations: doc.annotations} : {}),
          })
        }
        return out
      },
    }
    // handleRegistry reads only these members; the class's private ones are the bundle's.
    return content as unknown as RegistryContent
  }

  private bytesOf(digest: string): Buffer | undefined {
    return this.blobs.get(digest) ?? this.manifests.get(digest)?.bytes
  }

  private uploadHeaders(name: string, id: string, up: Upload): Record<string, string> {
    return {
      location: `/v2/${name}/blobs/uploads/${id}?_state=${randomBytes(6).toString('hex')}`,
      range: `0-${Math.max(0, up.size - 1)}`,
      'docker-upload-uuid': id,
      'content-length': '0',
    }
  }

  private blobCreated(res: ServerResponse, name: string, digest: string): void {
    this.repo(name).blobs.add(digest)
    res.setHeader('location', `/v2/${name}/blobs/${digest}`)
    res.setHeader('docker-content-digest', digest)
    res.setHeader('content-length', '0')
    res.statusCode = 201
    res.end()
  }

  /** POST (start, mount, or monolithic with ?digest=), PATCH a chunk, PUT to close with ?digest=, GET the status. */
  private upload({req, res, u, body}: Call, name: string, id: string): void {
    const method = req.method ?? 'GET'
    if (method === 'POST' && id === '') {
      const mount = u.searchParams.get('mount')
      const from = u.searchParams.get('from')
      if (mount && from && this.repos.get(from)?.blobs.has(mount)) return this.blobCreated(res, name, mount)
      const digest = u.searchParams.get('digest')
      if (digest && !mount) {
        if (sha256Digest(body) !== digest)
          return ociError(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content')
        this.blobs.set(digest, body)
        return this.blobCreated(res, name, digest)
      }
      // A new session; a mount that cannot be done opens one too (202), as distribution does.
      const newId = randomBytes(12).toString('hex')
      const up: Upload = {repo: name, chunks: [], size: 0}
      this.uploads.set(newId, up)
      const headers = this.uploadHeaders(name, newId, up)
      if (this.opts.chunkMinLength) headers['oci-chunk-min-length'] = String(this.opts.chunkMinLength)
      res.writeHead(202, headers)
      res.end()
      return
    }
    const up = this.uploads.get(id)
    if (!up || up.repo !== name) return ociError(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'blob upload unknown to registry')
    if (method === 'GET') {
      res.writeHead(204, this.uploadHeaders(name, id, up))
      res.end()
      return
    }
    if (method === 'PATCH' || method === 'PUT') {
      const range = req.headers['content-range']
      if (range && body.length > 0) {
        const m = /^(\d+)-(\d+)$/.exec(range)
        if (!m || Number(m[1]) !== up.size || Number(m[2]) - Number(m[1]) + 1 !== body.length) {
          return ociError(
            res,
            416,
            'RANGE_INVALID',
            `invalid content range ${range}, the upload holds ${up.size} bytes`,
          )
        }
      }
      up.chunks.push(body)
      up.size += body.length
      if (method === 'PATCH') {
        res.writeHead(202, this.uploadHeaders(name, id, up))
        res.end()
        return
      }
      const digest = u.searchParams.get('digest') ?? ''
      const bytes = Buffer.concat(up.chunks)
      // The session ends either way, as distribution's does.
      this.uploads.delete(id)
      if (!isDigest(digest) || sha256Digest(bytes) !== digest)
        return ociError(res, 400, 'DIGEST_INVALID', 'provided digest did not match uploaded content')
      this.blobs.set(digest, bytes)
      return this.blobCreated(res, name, digest)
    }
    if (method === 'DELETE') {
      this.uploads.delete(id)
      res.writeHead(204)
      res.end()
      return
    }
    return ociError(res, 405, 'UNSUPPORTED', `${method} on an upload`)
  }

  /** PUT a manifest by tag or digest: the digest checked, and everything it references present, as distribution checks. */
  private putManifest({req, res, body: bytes}: Call, name: string, reference: string): void {
    const digest = sha256Digest(bytes)
    if (isDigest(reference) && reference !== digest)
      return ociError(res, 400, 'DIGEST_INVALID', 'manifest digest did not match')
    const mediaType = bareMediaType(req.headers['content-type']) ?? ''
    let parsed
    try {
      parsed = parseManifestJson(bytes, mediaType)
    } catch {
      return ociError(res, 400, 'MANIFEST_INVALID', 'manifest invalid')
    }
    if (parsed.mediaType !== undefined && mediaType !== '' && parsed.mediaType !== mediaType) {
      return ociError(
        res,
        400,
        'MANIFEST_INVALID',
        `the manifest's mediaType ${parsed.mediaType} is not the Content-Type ${mediaType}`,
      )
    }
    const known = this.repos.get(name)
    const missing =
      parsed.kind === 'index'
        ? (parsed.index.manifests ?? []).filter((d) => !known?.manifests.has(d.digest)).map((d) => d.digest)
        : [parsed.manifest.config, ...(parsed.manifest.layers ?? [])]
            .filter((d) => d && !isForeignLayer(d) && !known?.blobs.has(d.digest))
            .map((d) => d.digest)
    if (missing.length > 0)
      return ociError(
        res,
        400,
        parsed.kind === 'index' ? 'MANIFEST_UNKNOWN' : 'MANIFEST_BLOB_UNKNOWN',
        `unknown: ${missing.join(', ')}`,
      )
    const repo = this.repo(name)
    this.manifests.set(digest, {bytes, mediaType: mediaType || parsed.mediaType || ''})
    repo.manifests.add(digest)
    if (!isDigest(reference)) repo.tags.set(reference, digest)
    res.writeHead(201, {
      location: `/v2/${name}/manifests/${digest}`,
      'docker-content-digest': digest,
      'content-length': '0',
    })
    res.end()
  }
}

/** A fake registry, started. */
export function startFakeRegistry(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  return new FakeRegistry(opts).start()
}
