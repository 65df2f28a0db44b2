import type {Readable} from 'node:stream'

import type {Descriptor} from '../content/descriptor.js'
import {isDigest, sha256Digest} from '../content/digest.js'
import {
  bareMediaType,
  isSchema1MediaType,
  MANIFEST_ACCEPT,
  manifestMediaType,
  MediaType,
} from '../content/media-types.js'
import type {OpenedStream, Opener} from '../content/opener.js'
import type {ReferrerLister, TagLister} from '../content/roles.js'
import {MAX_MANIFEST_BYTES} from '../defaults.js'
import {IntegrityError, NetworkError, RegistryError} from '../errors.js'
import {openStream} from '../fetch/http.js'
import {defaultRetryPolicy, type RetryPolicy, withRetry} from '../fetch/retry.js'
import {type ConnectionOptions, isCertificateError} from '../fetch/tls.js'
import {manifestGaps, parseManifestJson} from '../graph/parse.js'
import {registryEndpointHost} from '../oci/reference.js'
import {Once} from '../once.js'
import {RegistryAuth, scopesFor, withAuth} from './auth.js'
import type {Credentials} from './credentials.js'
import {MAX_ERROR_BODY, responseError} from './errors.js'
import {type HttpMethod, type RegistryResponse, RegistryTransport} from './transport.js'

export type {HttpMethod, RegistryResponse} from './transport.js'

/**
 * The registry client, in layers (one file each): transport.ts (got,
 * proxies, TLS, the HTTPS/HTTP scheme), auth.ts (challenges, credentials,
 * tokens), errors.ts (answers as RegistryErrors) and this API on top. The
 * retry policy applies here and only here: around the API version check,
 * around each request with its auth, and in `retry()` for steps of several
 * requests; nothing below retries, so a failing token service gets at most
 * the policy's attempts.
 */

/** Tag lists and catalogs are read in pages of this many names. */
const PAGE_SIZE = 1000

/** `insecure`: plain HTTP and unverified TLS allowed (the manifest's `insecure: true`); `caFiles`: extra CA files trusted for this registry. */
export interface RegistryClientOptions extends ConnectionOptions {
  /** The registry as references name it: `docker.io`, `registry.k8s.io`, `127.0.0.1:5000`. */
  registry: string
  /** Explicit credentials (`--username`/`--password`); otherwise the Docker config is read. */
  credentials?: Credentials
  /** Read the Docker config when no explicit credentials are given (default true). */
  dockerConfig?: boolean
  policy?: RetryPolicy
  signal?: AbortSignal
  /** Told when the connection is weaker than HTTPS with verified TLS (plain HTTP fallback). */
  onWarning?: (message: string) => void
}

export interface RegistryRequest {
  method?: HttpMethod
  /** `/v2/...` (query included) or an absolute URL the registry handed out (an upload `Location`). */
  path: string
  /** The repository the request acts on; its scope is asked for in Bearer tokens. */
  repository?: string
  /** Scope actions on `repository`; default `['pull']`. */
  actions?: string[]
  /** Further scopes, e.g. `repository:other/repo:pull` for a cross-repository mount. */
  scopes?: string[]
  headers?: Record<string, string>
  /** A Buffer, or a factory so that a retry can send a stream body again. */
  body?: Buffer | string | (() => Readable)
  /** Statuses returned to the caller instead of thrown; default: 2xx. */
  accept?: (status: number) => boolean
  /** Cap on bytes read from an accepted body; default MAX_MANIFEST_BYTES. */
  maxBody?: number
  /** Names the request in errors: `manifest 1.25 of docker.io/library/nginx`. */
  what?: string
  /** Follow redirects (default: GET and HEAD only). */
  followRedirect?: boolean
  /** Retry with the shared policy (default true). */
  retry?: boolean
}

export interface FetchedManifest {
  bytes: Buffer
  mediaType: string
  /** sha256 of `bytes`; equals the digest asked for or the registry's Docker-Content-Digest. */
  digest: string
}

/**
 * A client for one registry: picks HTTPS (or plain HTTP where the contract
 * allows it), speaks Basic and Bearer auth with tokens cached per scope, and
 * retries with the shared policy. `request` is the generic core that pull
 * and push calls are built on; nothing it throws names a credential.
 */
export class RegistryClient implements TagLister, ReferrerLister {
  readonly registry: string
  /** host[:port] requests go to (`registry-1.docker.io` for `docker.io`). */
  readonly host: string
  private readonly opts: RegistryClientOptions
  private readonly policy: RetryPolicy
  private readonly transport: RegistryTransport
  private readonly auth: RegistryAuth
  private baseUrl?: Promise<string>
  /** False once the registry answered the referrers API with 404: it has none (see `referrers`). */
  private referrersApi = true
  /** Each repository's tags, read once for this client (one per run), or undefined where they cannot be read: see `mayHaveTag`. */
  private readonly tagLists = new Once<string, ReadonlySet<string> | undefined>()

  constructor(opts: RegistryClientOptions) {
    this.opts = opts
    if (opts.insecure)
      opts.onWarning?.(`${opts.registry}: insecure: TLS certificates are not verified and plain HTTP is allowed`)
    this.registry = opts.registry
    this.host = registryEndpointHost(opts.registry)
    this.policy = opts.policy ?? defaultRetryPolicy
    this.transport = new RegistryTransport({
      registry: opts.registry,
      host: this.host,
      insecure: opts.insecure,
      caFiles: opts.caFiles,
    })
    this.auth = new RegistryAuth(
      {registry: opts.registry, host: this.host, credentials: opts.credentials, dockerConfig: opts.dockerConfig},
      this.transport,
    )
  }

  /** `https://host` or `http://host`, found by `GET /v2/` once. */
  base(): Promise<string> {
    let attempts = 0
    this.baseUrl ??= this.retry(() => {
      attempts++
      return this.transport.scheme((base) => this.ping(base))
    }).catch((err) => {
      this.baseUrl = undefined
      if (err instanceof NetworkError && err.status === undefined && !isCertificateError(err)) {
        const reason = err.message.startsWith(`${this.host}: `) ? err.message.slice(this.host.length + 2) : err.message
        throw new NetworkError(
          `${this.registry}: cannot reach the registry: ${reason}${attempts > 1 ? ` (${attempts} attempts)` : ''}`,
          {
            host: this.host,
            cause: err,
          },
        )
      }
      throw err
    })
    return this.baseUrl
  }

  /** The API version check at one base URL: 2xx, or a 401 whose challenge is remembered. */
  private async ping(base: string): Promise<void> {
    const res = await this.transport.exchange(`${base}/v2/`, 'GET', {followRedirect: true, maxBody: MAX_ERROR_BODY})
    if (res.status === 401) {
      this.auth.challenged(res.headers['www-authenticate'])
      return
    }
    if (res.status >= 200 && res.status < 300) return
    throw this.errorFor(res, {path: '/v2/', what: 'the API version check (GET /v2/)'})
  }

  private errorFor(res: RegistryResponse, req: Pick<RegistryRequest, 'path' | 'what' | 'repository'>): RegistryError {
    return responseError(res, {
      registry: this.registry,
      host: this.host,
      what: req.what ?? req.path,
      repository: req.repository,
      authHint: (status) => this.auth.hint(status),
    })
  }

  private toUrl(base: string, path: string): string {
    if (/^https?:\/\//.test(path)) return path
    return `${base}${path.startsWith('/') ? '' : '/'}${path}`
  }

  /**
   * Run `fn` under this client's retry policy and abort signal: for steps
   * made of several requests (an upload chunk and its status check), whose
   * requests then go with `retry: false`.
   */
  retry<T>(fn: (attempt: number) => Promise<T>): Promise<T> {
    return withRetry(fn, {policy: this.policy, signal: this.opts.signal})
  }

  /**
   * The generic request: auth for the request's scopes, one token refresh on
   * 401, retries on 408/429/5xx and connection errors (a token service's
   * too). Answers outside `accept` become RegistryErrors carrying the
   * registry's error codes.
   */
  async request(req: RegistryRequest): Promise<RegistryResponse> {
    const base = await this.base()
    const url = this.toUrl(base, req.path)
    const method = req.method ?? 'GET'
    const follow = req.followRedirect ?? (method === 'GET' || method === 'HEAD')
    const accept = req.accept ?? ((s: number) => s >= 200 && s < 300)
    let scopes = scopesFor(req)
    const body = () => (typeof req.body === 'function' ? req.body() : req.body)
    const maxBody = req.maxBody ?? MAX_MANIFEST_BYTES
    const once = async (): Promise<RegistryResponse> => {
      let auth = await this.auth.authorization(scopes)
      let res = await this.transport.exchange(url, method, {
        headers: withAuth(req.headers, auth),
        body: body(),
        followRedirect: follow,
        maxBody,
      })
      if (res.status === 401) {
        const ch = this.auth.challenged(res.headers['www-authenticate'])
        if (ch) {
          const asked = ch.params.scope?.split(' ').filter(Boolean) ?? []
          scopes = [...new Set([...scopes, ...asked])].sort()
        }
        auth = await this.auth.authorization(scopes, true)
        if (auth)
          res = await this.transport.exchange(url, method, {
            headers: withAuth(req.headers, auth),
            body: body(),
            followRedirect: follow,
            maxBody,
          })
      }
      if (!accept(res.status)) throw this.errorFor(res, req)
      return res
    }
    if (req.retry === false) return once()
    return this.retry(once)
  }

  /**
   * GET a manifest or index by tag or digest. The bytes must hash to the
   * digest asked for, or to the registry's Docker-Content-Digest for a tag.
   * Docker schema 1 is refused.
   */
  async getManifest(repository: string, reference: string): Promise<FetchedManifest> {
    const name = `${this.registry}/${repository}${isDigest(reference) ? '@' : ':'}${reference}`
    const res = await this.request({
      path: `/v2/${repository}/manifests/${reference}`,
      repository,
      headers: {accept: MANIFEST_ACCEPT},
      what: `manifest ${name}`,
    }).catch((err: unknown) => {
      throw err instanceof RegistryError && err.status === 404 ? this.notFound(err, repository, reference) : err
    })
    const bytes = res.body
    const digest = sha256Digest(bytes)
    if (isDigest(reference) && digest !== reference) throw new IntegrityError(`manifest ${name}`, reference, digest)
    const dcd = res.headers['docker-content-digest']
    if (typeof dcd === 'string' && dcd.startsWith('sha256:') && dcd !== digest) {
      throw new IntegrityError(`manifest ${name} (Docker-Content-Digest)`, dcd, digest)
    }
    const mediaType = manifestMediaType(bytes, bareMediaType(res.headers['content-type']))
    if (isSchema1MediaType(mediaType)) {
      throw new RegistryError(
        `${name} is a Docker schema 1 manifest, which airlock does not support (deprecated since 2017); push it again with a current Docker, skopeo or crane`,
        {host: this.host, status: res.status, repository, codes: ['SCHEMA1_UNSUPPORTED']},
      )
    }
    return {bytes, mediaType, digest}
  }

  /** A 404 for a manifest, said in a user's words: which image, which tag or digest, and how to see what there is. */
  private notFound(err: RegistryError, repository: string, reference: string): RegistryError {
    const repo = `${this.registry}/${repository}`
    const code = err.codes[0] ?? 'MANIFEST_UNKNOWN'
    // The reference once, at the start, as the task that failed names it.
    const name = `${repo}${isDigest(reference) ? '@' : ':'}${reference}`
    const what =
      code === 'NAME_UNKNOWN'
        ? 'no such repository'
        : isDigest(reference)
          ? 'no manifest with that digest'
          : 'no such tag'
    return new RegistryError(`${name}: ${what} (HTTP 404 ${code})`, {
      host: this.host,
      status: 404,
      repository,
      codes: err.codes,
      details: err.details,
      suggestions: [
        `list its tags with \`skopeo list-tags docker://${repo}\` or GET /v2/${repository}/tags/list on ${this.registry}`,
      ],
    })
  }

  /** HEAD a manifest: its digest, media type and size, or undefined when absent. */
  async headManifest(
    repository: string,
    reference: string,
    actions: string[] = ['pull'],
  ): Promise<{digest?: string; mediaType?: string; size?: number} | undefined> {
    const res = await this.request({
      method: 'HEAD',
      path: `/v2/${repository}/manifests/${reference}`,
      repository,
      actions,
      headers: {accept: MANIFEST_ACCEPT},
      accept: (s) => (s >= 200 && s < 300) || s === 404,
      what: `manifest ${this.registry}/${repository}:${reference}`,
    })
    if (res.status === 404) return undefined
    const len = res.headers['content-length']
    return {
      digest:
        typeof res.headers['docker-content-digest'] === 'string' ? res.headers['docker-content-digest'] : undefined,
      mediaType: bareMediaType(res.headers['content-type']),
      size: len === undefined ? undefined : Number(len),
    }
  }

  /**
   * An Opener for `downloadVerified`: GET the blob from `offset` (Range),
   * following redirects to a CDN or object store; got drops Authorization
   * when a redirect leaves the registry's host. A 401 refreshes the token once.
   */
  blobOpener(repository: string, digest: string, what?: string): Opener {
    const scopes = scopesFor({repository})
    return async (offset: number): Promise<OpenedStream> => {
      const base = await this.base()
      const url = `${base}/v2/${repository}/blobs/${digest}`
      const http = await this.transport.got()
      for (let round = 0; ; round++) {
        const auth = await this.auth.authorization(scopes, round > 0)
        try {
          return await openStream(http, url, {
            offset,
            headers: withAuth({}, auth),
            what: what ?? `blob ${digest} of ${this.registry}/${repository}`,
          })
        } catch (err) {
          const status = (err as {status?: number}).status
          if (status === 401 && round === 0 && this.auth.challenge) continue
          if (status === 401 || status === 403 || status === 404) {
            throw new RegistryError(
              `${this.registry}: ${what ?? `blob ${digest} of ${repository}`}: HTTP ${status}${status === 404 ? ' BLOB_UNKNOWN' : ''}`,
              {
                host: this.host,
                status,
                repository,
                codes: status === 404 ? ['BLOB_UNKNOWN'] : [],
              },
            )
          }
          throw err
        }
      }
    }
  }

  /**
   * Every tag of `repository`, following the `Link: <...>; rel="next"`
   * pages of `tags/list` (distribution spec); a repository the registry does
   * not know is a RegistryError (404 NAME_UNKNOWN).
   */
  async listTags(repository: string, opts: {pageSize?: number} = {}): Promise<string[]> {
    return this.pages(
      `/v2/${repository}/tags/list?n=${opts.pageSize ?? PAGE_SIZE}`,
      repository,
      `the tags of ${this.registry}/${repository}`,
      (j) => (j as {tags?: unknown}).tags,
    )
  }

  /**
   * Whether `repository` may have `tag`: false only when its tag list says
   * not. The list is read once for this client (one per run) and shared by
   * every image of the repository, so a repository without the tag costs one
   * request (a page per thousand tags) instead of a HEAD per lookup. True
   * when the list holds the tag, or when it cannot be read (a registry may
   * deny tags/list to a pull-only token, or fail): the caller then asks with
   * a HEAD, as it would without the list. A tag pushed after the list was
   * read is not seen in this run, as a HEAD made a moment earlier would not
   * have seen it.
   */
  async mayHaveTag(repository: string, tag: string): Promise<boolean> {
    const tags = await this.tagLists.run(repository, () =>
      this.listTags(repository).then(
        (list) => new Set(list),
        () => undefined,
      ),
    )
    return tags === undefined || tags.has(tag)
  }

  /**
   * A small blob (a config) read whole into memory, capped at `maxBytes`
   * and verified against its digest: the one reader of config blobs
   * straight from a registry (mirror learns a platform, a chart its metadata).
   */
  async getSmallBlob(
    repository: string,
    desc: Pick<Descriptor, 'digest' | 'size'>,
    what: string,
    maxBytes = MAX_MANIFEST_BYTES,
  ): Promise<Buffer> {
    const res = await this.request({
      path: `/v2/${repository}/blobs/${desc.digest}`,
      repository,
      maxBody: Math.min(desc.size, maxBytes),
      what,
    })
    const actual = sha256Digest(res.body)
    if (actual !== desc.digest) throw new IntegrityError(what, desc.digest, actual)
    return res.body
  }

  /** Every repository of the registry, from the paginated `_catalog`. */
  async catalog(opts: {pageSize?: number} = {}): Promise<string[]> {
    return this.pages(
      `/v2/_catalog?n=${opts.pageSize ?? PAGE_SIZE}`,
      undefined,
      `the catalog of ${this.registry}`,
      (j) => (j as {repositories?: unknown}).repositories,
      ['registry:catalog:*'],
    )
  }

  /** GET a JSON list page after page, as long as the answer links to a next one. */
  private async pages(
    first: string,
    repository: string | undefined,
    what: string,
    pick: (j: unknown) => unknown,
    scopes?: string[],
  ): Promise<string[]> {
    const out: string[] = []
    const seen = new Set<string>()
    for (let path: string | undefined = first; path && !seen.has(path);) {
      seen.add(path)
      const res = await this.request({path, repository, scopes, what})
      let list: unknown
      try {
        list = pick(JSON.parse(res.body.toString('utf8')))
      } catch {
        throw new RegistryError(`${this.registry}: ${what}: the answer is not JSON`, {
          host: this.host,
          status: res.status,
          repository,
        })
      }
      // A registry answers an empty repository with `null`.
      if (list !== null && list !== undefined && !Array.isArray(list))
        throw new RegistryError(`${this.registry}: ${what}: the answer has no list`, {
          host: this.host,
          status: res.status,
          repository,
        })
      for (const name of (list as unknown[] | null) ?? []) if (typeof name === 'string') out.push(name)
      path = nextLink(res.headers.link, res.url)
    }
    return out
  }

  /**
   * The manifests whose `subject` is `digest`: the referrers API
   * (`GET /v2/<name>/referrers/<digest>`, `artifactType` filtered here too,
   * as a registry may ignore the filter), else the referrers tag schema:
   * the index tagged `sha256-<hex>`. None when neither is there.
   * `listedTags`: ask `mayHaveTag` before the HEAD of that tag (for a
   * repository only read from during the run).
   */
  async referrers(
    repository: string,
    digest: string,
    artifactType?: string,
    opts: {listedTags?: boolean} = {},
  ): Promise<Descriptor[]> {
    const what = `the referrers of ${this.registry}/${repository}@${digest}`
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : ''
    // A registry with the API never answers it 404 (distribution spec), so one 404 says it has
    // none, and the subjects after go straight to the tag schema: a request each fewer.
    const res = this.referrersApi
      ? await this.request({
          path: `/v2/${repository}/referrers/${digest}${query}`,
          repository,
          headers: {accept: MediaType.ociIndex},
          // 404: no referrers API (or an old registry); 400/405: the same from some registries.
          accept: (s) => (s >= 200 && s < 300) || s === 404 || s === 400 || s === 405,
          what,
        })
      : undefined
    if (res?.status === 404) this.referrersApi = false
    let list: Descriptor[] | undefined
    if (
      res &&
      res.status >= 200 &&
      res.status < 300 &&
      bareMediaType(res.headers['content-type']) === MediaType.ociIndex
    ) {
      list = manifestsOf(res.body)
      if (list === undefined)
        throw new RegistryError(`${this.registry}: ${what}: the answer is not an OCI index`, {
          host: this.host,
          status: res.status,
          repository,
        })
    } else {
      const tag = `sha256-${digest.slice('sha256:'.length)}`
      if (opts.listedTags && !(await this.mayHaveTag(repository, tag))) return []
      const head = await this.headManifest(repository, tag)
      if (!head) return []
      list = manifestsOf((await this.getManifest(repository, tag)).bytes) ?? []
    }
    return artifactType ? list.filter((d) => d.artifactType === artifactType) : list
  }
}

/** The URL of `Link: <url>; rel="next"`, resolved against the URL that answered. */
export function nextLink(header: string | string[] | undefined, base: string): string | undefined {
  for (const value of Array.isArray(header) ? header : header ? [header] : []) {
    for (const part of value.split(/,(?=\s*<)/)) {
      const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part)
      if (m && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/i.test(m[2])) return new URL(m[1], base).toString()
    }
  }
  return undefined
}

/** The `manifests` of an index (by graph/'s one parser), or undefined when the bytes are not one. */
function manifestsOf(bytes: Buffer): Descriptor[] | undefined {
  try {
    const parsed = parseManifestJson(bytes, MediaType.ociIndex)
    return parsed.kind === 'index' && manifestGaps(parsed).length === 0 ? parsed.index.manifests : undefined
  } catch {
    return undefined
  }
}
