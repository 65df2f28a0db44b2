import type {Got} from 'got'
import type {IncomingHttpHeaders} from 'node:http'
import type {Readable} from 'node:stream'

import {FailureError, IntegrityError, isAirlockError, NetworkError, RegistryError} from '../errors.js'
import type {Opener, OpenedStream} from '../content/opener.js'
import {connectionError, createHttp, openStream, redactUrl} from '../fetch/http.js'
import {defaultRetryPolicy, type RetryPolicy, withRetry} from '../fetch/retry.js'
import {isDigest, sha256Digest} from '../oci/digest.js'
import {bareMediaType, isSchema1MediaType, MANIFEST_ACCEPT, manifestMediaType} from '../content/media-types.js'
import {isLoopbackRegistry, registryEndpointHost} from '../oci/reference.js'
import {type Challenge, parseChallenges, repositoryScope} from './challenge.js'
import {type Credentials, dockerCredentials} from './credentials.js'

/** Manifests larger than this are refused (containerd uses the same bound). */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024
/** Error bodies are read up to this many bytes, the rest is dropped. */
const MAX_ERROR_BODY = 64 * 1024

export interface RegistryClientOptions {
  /** The registry as references name it: `docker.io`, `registry.k8s.io`, `127.0.0.1:5000`. */
  registry: string
  /** Plain HTTP and unverified TLS allowed (the manifest's `insecure: true`). */
  insecure?: boolean
  /** Extra CA files trusted for this registry. */
  caFiles?: string[]
  /** Explicit credentials (`--username`/`--password`); otherwise the Docker config is read. */
  credentials?: Credentials
  /** Read the Docker config when no explicit credentials are given (default true). */
  dockerConfig?: boolean
  policy?: RetryPolicy
  signal?: AbortSignal
  /** Told when the connection is weaker than HTTPS with verified TLS (plain HTTP fallback). */
  onWarning?: (message: string) => void
}

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'

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

export interface RegistryResponse {
  status: number
  headers: IncomingHttpHeaders
  body: Buffer
  /** The URL that answered, after redirects. */
  url: string
}

export interface FetchedManifest {
  bytes: Buffer
  mediaType: string
  /** sha256 of `bytes`; equals the digest asked for or the registry's Docker-Content-Digest. */
  digest: string
}

interface CachedToken {
  value: string
  expires: number
}

/** Certificate problems are answers, not a reason to try plain HTTP. */
function isCertificateError(err: unknown): boolean {
  const code = (err as {code?: string; cause?: {code?: string}}).code ?? (err as {cause?: {code?: string}}).cause?.code ?? ''
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ALTNAME|UNABLE_TO_GET_ISSUER/.test(code)
}

function basicHeader(c: Credentials): string {
  return `Basic ${Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')}`
}

/** `{errors: [{code, message}]}` from an error body, when it is one. */
export function parseErrorBody(body: Buffer): {codes: string[]; messages: string[]} {
  try {
    const j = JSON.parse(body.subarray(0, MAX_ERROR_BODY).toString('utf8')) as {errors?: {code?: string; message?: string}[]}
    const errors = Array.isArray(j.errors) ? j.errors : []
    return {
      codes: errors.map((e) => String(e.code ?? '')).filter(Boolean),
      messages: errors.map((e) => String(e.message ?? '').slice(0, 200)).filter(Boolean),
    }
  } catch {
    return {codes: [], messages: []}
  }
}

/**
 * A client for one registry: picks HTTPS (or plain HTTP where the contract
 * allows it), speaks Basic and Bearer auth with tokens cached per scope, and
 * retries with the shared policy. `request` is the generic core that pull
 * and push calls are built on; nothing it throws names a credential.
 */
export class RegistryClient {
  readonly registry: string
  /** host[:port] requests go to (`registry-1.docker.io` for `docker.io`). */
  readonly host: string
  private readonly opts: RegistryClientOptions
  private readonly policy: RetryPolicy
  private http?: Promise<Got>
  private baseUrl?: Promise<string>
  private challenge?: Challenge
  private creds?: Promise<Credentials | undefined>
  /** The credentials once looked up, so a refusal can say whose they were. */
  private resolvedCreds?: Credentials
  private readonly tokens = new Map<string, CachedToken>()

  constructor(opts: RegistryClientOptions) {
    this.opts = opts
    if (opts.insecure) opts.onWarning?.(`${opts.registry}: insecure: TLS certificates are not verified and plain HTTP is allowed`)
    this.registry = opts.registry
    this.host = registryEndpointHost(opts.registry)
    this.policy = opts.policy ?? defaultRetryPolicy
  }

  private got(): Promise<Got> {
    this.http ??= createHttp({caFiles: this.opts.caFiles, insecure: this.opts.insecure})
    return this.http
  }

  private credentials(): Promise<Credentials | undefined> {
    this.creds ??= (
      this.opts.credentials
        ? Promise.resolve(this.opts.credentials)
        : this.opts.dockerConfig === false
          ? Promise.resolve(undefined)
          : dockerCredentials(this.registry)
    ).then((c) => {
      this.resolvedCreds = c
      return c
    })
    return this.creds
  }

  /** `https://host` or `http://host`, found by `GET /v2/` once. */
  base(): Promise<string> {
    let attempts = 0
    this.baseUrl ??= withRetry(
      () => {
        attempts++
        return this.ping()
      },
      {policy: this.policy, signal: this.opts.signal},
    ).catch((err) => {
      this.baseUrl = undefined
      if (err instanceof NetworkError && err.status === undefined && !isCertificateError(err)) {
        const reason = err.message.startsWith(`${this.host}: `) ? err.message.slice(this.host.length + 2) : err.message
        throw new NetworkError(`${this.registry}: cannot reach the registry: ${reason}${attempts > 1 ? ` (${attempts} attempts)` : ''}`, {
          host: this.host,
          cause: err,
        })
      }
      throw err
    })
    return this.baseUrl
  }

  private async ping(): Promise<string> {
    const https = `https://${this.host}`
    try {
      await this.pingAt(https)
      return https
    } catch (err) {
      const httpAllowed = this.opts.insecure || isLoopbackRegistry(this.host)
      if (isCertificateError(err) && isAirlockError(err)) {
        ;(err.suggestions as string[]).push(`trust the registry's CA with --ca-file or caFile in the manifest's spec.registries (host ${this.registry})`)
      }
      if (!httpAllowed || isCertificateError(err) || (isAirlockError(err) && err.kind === 'registry')) throw err
      const http = `http://${this.host}`
      // When both fail, the plain HTTP error is the one reported (a loopback registry that is down).
      await this.pingAt(http)
      // Loopback registries use plain HTTP as Docker allows, without a word; `insecure` was announced already.
      return http
    }
  }

  private async pingAt(base: string): Promise<void> {
    const res = await this.exchange(`${base}/v2/`, 'GET', {}, undefined, true, MAX_ERROR_BODY)
    if (res.status === 401) {
      this.challenge = pickChallenge(res.headers['www-authenticate'])
      return
    }
    if (res.status >= 200 && res.status < 300) return
    throw this.errorFor(res, {path: '/v2/', what: 'the API version check (GET /v2/)'})
  }

  private scopesFor(req: Pick<RegistryRequest, 'repository' | 'actions' | 'scopes'>): string[] {
    const s = new Set<string>(req.scopes ?? [])
    if (req.repository) s.add(repositoryScope(req.repository, req.actions ?? ['pull']))
    return [...s].sort()
  }

  /** The Authorization value for these scopes, fetching a token when needed. */
  private async authorization(scopes: string[], refresh = false): Promise<string | undefined> {
    const ch = this.challenge
    if (!ch) return undefined
    const creds = await this.credentials()
    if (ch.scheme === 'basic') return creds?.username !== undefined ? basicHeader(creds) : undefined
    if (ch.scheme !== 'bearer' || !ch.params.realm) return undefined
    const key = scopes.join(' ')
    const cached = this.tokens.get(key)
    if (cached && !refresh && cached.expires > Date.now()) return `Bearer ${cached.value}`
    const token = await this.fetchToken(ch, scopes, creds)
    this.tokens.set(key, token)
    return `Bearer ${token.value}`
  }

  private async fetchToken(ch: Challenge, scopes: string[], creds?: Credentials): Promise<CachedToken> {
    const realm = new URL(ch.params.realm)
    const http = await this.got()
    const run = async () => {
      if (creds?.token) {
        // An identity token from `docker login` is an OAuth2 refresh token.
        const form = new URLSearchParams({grant_type: 'refresh_token', refresh_token: creds.token, client_id: 'airlock'})
        if (ch.params.service) form.set('service', ch.params.service)
        if (scopes.length > 0) form.set('scope', scopes.join(' '))
        return this.exchange(realm.toString(), 'POST', {'content-type': 'application/x-www-form-urlencoded'}, form.toString(), false, MAX_ERROR_BODY, http)
      }
      const u = new URL(realm)
      if (ch.params.service) u.searchParams.set('service', ch.params.service)
      for (const s of scopes) u.searchParams.append('scope', s)
      const headers: Record<string, string> = creds?.username === undefined ? {} : {authorization: basicHeader(creds)}
      return this.exchange(u.toString(), 'GET', headers, undefined, true, MAX_ERROR_BODY, http)
    }
    const res = await withRetry(async () => {
      const r = await run()
      if (r.status >= 500 || r.status === 429 || r.status === 408) throw this.errorFor(r, {path: '', what: `a token from ${realm.host}`})
      return r
    }, {policy: this.policy, signal: this.opts.signal})
    if (res.status === 401 || res.status === 403) {
      throw withHint(
        new RegistryError(`${this.registry}: the token service ${realm.host} refused ${creds ? 'the credentials' : 'anonymous access'} (HTTP ${res.status})`, {
          host: this.host,
          status: res.status,
        }),
        this.authHint(res.status, creds),
      )
    }
    if (res.status < 200 || res.status >= 300) throw this.errorFor(res, {path: '', what: `a token from ${realm.host}`})
    let j: {token?: string; access_token?: string; expires_in?: number}
    try {
      j = JSON.parse(res.body.toString('utf8'))
    } catch {
      throw new RegistryError(`${this.registry}: the token service ${realm.host} sent no JSON`, {host: this.host, status: res.status})
    }
    const value = j.token || j.access_token
    if (!value) throw new RegistryError(`${this.registry}: the token service ${realm.host} sent no token`, {host: this.host, status: res.status})
    const ttl = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60
    // Renew a little early so a token does not expire between check and use.
    return {value, expires: Date.now() + Math.max(1, ttl - 10) * 1000}
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
   * 401, retries on 408/429/5xx and connection errors. Answers outside
   * `accept` become RegistryErrors carrying the registry's error codes.
   */
  async request(req: RegistryRequest): Promise<RegistryResponse> {
    const base = await this.base()
    const url = this.toUrl(base, req.path)
    const method = req.method ?? 'GET'
    const follow = req.followRedirect ?? (method === 'GET' || method === 'HEAD')
    const accept = req.accept ?? ((s: number) => s >= 200 && s < 300)
    let scopes = this.scopesFor(req)
    const body = () => (typeof req.body === 'function' ? req.body() : req.body)
    const once = async (): Promise<RegistryResponse> => {
      let auth = await this.authorization(scopes)
      let res = await this.exchange(url, method, withAuth(req.headers, auth), body(), follow, req.maxBody ?? MAX_MANIFEST_BYTES)
      if (res.status === 401) {
        const ch = pickChallenge(res.headers['www-authenticate'])
        if (ch) {
          this.challenge = ch
          const asked = ch.params.scope?.split(' ').filter(Boolean) ?? []
          scopes = [...new Set([...scopes, ...asked])].sort()
        }
        auth = await this.authorization(scopes, true)
        if (auth) res = await this.exchange(url, method, withAuth(req.headers, auth), body(), follow, req.maxBody ?? MAX_MANIFEST_BYTES)
      }
      if (!accept(res.status)) throw this.errorFor(res, req)
      return res
    }
    if (req.retry === false) return once()
    return withRetry(once, {policy: this.policy, signal: this.opts.signal})
  }

  /** One HTTP exchange, body read up to a cap (errors up to MAX_ERROR_BODY). */
  private async exchange(
    url: string,
    method: HttpMethod,
    headers: Record<string, string>,
    body: Buffer | string | Readable | undefined,
    followRedirect: boolean,
    maxBody: number,
    http?: Got,
  ): Promise<RegistryResponse> {
    const got = http ?? (await this.got())
    const hasBody = method === 'POST' || method === 'PUT' || method === 'PATCH'
    const stream = got.stream(url, {
      method,
      headers,
      followRedirect,
      body: hasBody ? (body ?? '') : undefined,
    } as never)
    try {
      const res = await new Promise<import('got').Response>((resolve, reject) => {
        stream.once('response', resolve)
        stream.once('error', reject)
      })
      const cap = res.statusCode >= 200 && res.statusCode < 300 ? maxBody : MAX_ERROR_BODY
      const chunks: Buffer[] = []
      let n = 0
      if (method !== 'HEAD') {
        for await (const chunk of stream as AsyncIterable<Buffer>) {
          n += chunk.length
          if (n > cap) {
            if (cap === MAX_ERROR_BODY) break
            throw new FailureError(`${new URL(url).host}: the answer to ${method} ${redactUrl(url)} is larger than ${cap} bytes`)
          }
          chunks.push(chunk)
        }
      }
      return {status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), url: res.url}
    } catch (err) {
      if (isAirlockError(err)) throw err
      throw connectionError(err, url)
    } finally {
      stream.destroy()
    }
  }

  private errorFor(res: RegistryResponse, req: Pick<RegistryRequest, 'path' | 'what' | 'repository'>): RegistryError {
    const {codes, messages} = parseErrorBody(res.body)
    const what = req.what ?? `${req.path}`
    const detail = messages.length > 0 ? `: ${messages.join('; ')}` : ''
    const codeText = codes.length > 0 ? ` ${codes.join(', ')}` : ''
    const err = new RegistryError(`${this.registry}: ${what}: HTTP ${res.status}${codeText}${detail}`, {
      host: this.host,
      status: res.status,
      repository: req.repository,
      codes,
    })
    if (res.status === 401 || res.status === 403) {
      withHint(err, this.authHint(res.status, this.resolvedCreds))
    }
    const ra = res.headers['retry-after']
    if (typeof ra === 'string') (err as RegistryError & {retryAfter?: string}).retryAfter = ra
    return err
  }

  /**
   * What to suggest after a 401/403. Credentials that were sent are named by
   * user and origin (never the password): logging in again with the same
   * ones would not help.
   */
  private authHint(status: number, creds: Credentials | undefined): string {
    if (!creds) return 'log in with `docker login` or pass --username and --password; check that the account may use this repository'
    const from = this.opts.credentials ? '--username/--password' : 'the Docker config'
    if (creds.username === undefined) return `the registry refused the token from ${from}: log in again with \`docker login\``
    const whose = `user ${creds.username} (from ${from})`
    return status === 403
      ? `the registry refused access for ${whose}: check the username and password, and that the account may use this repository`
      : `the registry refused the credentials for ${whose}: check the username and password`
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
    const what =
      code === 'NAME_UNKNOWN'
        ? `${repo}: no such repository in ${this.registry}`
        : isDigest(reference)
          ? `${repo}@${reference}: no manifest with that digest in ${repo}`
          : `${repo}:${reference}: tag ${reference} not found in ${repo}`
    return new RegistryError(`${what} (HTTP 404 ${code})`, {
      host: this.host,
      status: 404,
      repository,
      codes: err.codes,
      details: err.details,
      suggestions: [`list its tags with \`skopeo list-tags docker://${repo}\` or GET /v2/${repository}/tags/list on ${this.registry}`],
    })
  }

  /** HEAD a manifest: its digest, media type and size, or undefined when absent. */
  async headManifest(repository: string, reference: string, actions: string[] = ['pull']): Promise<{digest?: string; mediaType?: string; size?: number} | undefined> {
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
      digest: typeof res.headers['docker-content-digest'] === 'string' ? res.headers['docker-content-digest'] : undefined,
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
    const scopes = this.scopesFor({repository})
    return async (offset: number): Promise<OpenedStream> => {
      const base = await this.base()
      const url = `${base}/v2/${repository}/blobs/${digest}`
      const http = await this.got()
      for (let round = 0; ; round++) {
        const auth = await this.authorization(scopes, round > 0)
        try {
          return await openStream(http, url, {offset, headers: withAuth({}, auth), what: what ?? `blob ${digest} of ${this.registry}/${repository}`})
        } catch (err) {
          const status = (err as {status?: number}).status
          if (status === 401 && round === 0 && this.challenge) continue
          if (status === 401 || status === 403 || status === 404) {
            throw new RegistryError(`${this.registry}: ${what ?? `blob ${digest} of ${repository}`}: HTTP ${status}${status === 404 ? ' BLOB_UNKNOWN' : ''}`, {
              host: this.host,
              status,
              repository,
              codes: status === 404 ? ['BLOB_UNKNOWN'] : [],
            })
          }
          throw err
        }
      }
    }
  }
}

function withHint<E extends RegistryError>(err: E, hint: string): E {
  ;(err.suggestions as string[]).push(hint)
  return err
}

function withAuth(headers: Record<string, string> | undefined, auth: string | undefined): Record<string, string> {
  const h: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers ?? {})) h[k.toLowerCase()] = v
  if (auth) h.authorization = auth
  return h
}

function pickChallenge(header: string | string[] | undefined): Challenge | undefined {
  const all = parseChallenges(header)
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic')
}
