import {noteSecret, RegistryError} from '../errors.js'
import {type Challenge, parseChallenges, repositoryScope} from './challenge.js'
import {type Credentials, dockerCredentials} from './credentials.js'
import {MAX_ERROR_BODY, responseError, withHint} from './errors.js'
import type {RegistryTransport} from './transport.js'

/**
 * Registry auth: the challenge the registry last sent, the credentials
 * (explicit, else the Docker config, else anonymous), Basic headers and
 * Bearer tokens cached per scope set. One attempt per token request: a
 * token service that fails is retried by the client's one retry layer,
 * together with the request that needed the token.
 */

export interface AuthOptions {
  registry: string
  host: string
  /** Explicit credentials (`--username`/`--password`); otherwise the Docker config is read. */
  credentials?: Credentials
  /** Read the Docker config when no explicit credentials are given (default true). */
  dockerConfig?: boolean
}

interface CachedToken {
  value: string
  expires: number
}

function basicHeader(c: Credentials): string {
  const b64 = Buffer.from(`${c.username ?? ''}:${c.password ?? ''}`).toString('base64')
  noteSecret(c.password)
  noteSecret(b64)
  return `Basic ${b64}`
}

/** The challenge to answer: Bearer when offered, else Basic. */
export function pickChallenge(header: string | string[] | undefined): Challenge | undefined {
  const all = parseChallenges(header)
  return all.find((c) => c.scheme === 'bearer') ?? all.find((c) => c.scheme === 'basic')
}

/** Headers with names lowercased and the Authorization value set when there is one. */
export function withAuth(
  headers: Record<string, string> | undefined,
  auth: string | undefined,
): Record<string, string> {
  const h: Record<string, string> = {}
  for (const [k, v] of Object.entries(headers ?? {})) h[k.toLowerCase()] = v
  if (auth) {
    // The token or base64 after the scheme: a registry echoing it in an error does not get it printed.
    noteSecret(auth.replace(/^\S+\s+/, ''))
    h.authorization = auth
  }
  return h
}

/** `repository:<repo>:<actions>` for the request plus any further scopes, sorted (the token cache key). */
export function scopesFor(req: {repository?: string; actions?: string[]; scopes?: string[]}): string[] {
  const s = new Set<string>(req.scopes ?? [])
  if (req.repository) s.add(repositoryScope(req.repository, req.actions ?? ['pull']))
  return [...s].sort()
}

export class RegistryAuth {
  /** The challenge of the last 401 (from the API version check, or a request). */
  challenge?: Challenge
  private creds?: Promise<Credentials | undefined>
  /** The credentials once looked up, so a refusal can say whose they were. */
  private resolvedCreds?: Credentials
  private readonly tokens = new Map<string, CachedToken>()

  constructor(
    private readonly opts: AuthOptions,
    private readonly transport: RegistryTransport,
  ) {}

  /** Remember the challenge of a 401; returns it. */
  challenged(header: string | string[] | undefined): Challenge | undefined {
    const ch = pickChallenge(header)
    if (ch) this.challenge = ch
    return ch
  }

  private credentials(): Promise<Credentials | undefined> {
    this.creds ??= (
      this.opts.credentials
        ? Promise.resolve(this.opts.credentials)
        : this.opts.dockerConfig === false
          ? Promise.resolve(undefined)
          : dockerCredentials(this.opts.registry)
    ).then((c) => {
      this.resolvedCreds = c
      return c
    })
    return this.creds
  }

  /** The Authorization value for these scopes, fetching a token when needed (or when `refresh`). */
  async authorization(scopes: string[], refresh = false): Promise<string | undefined> {
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

  /** One token request; a 5xx, 408 or 429 throws a retryable RegistryError, a refusal says whose credentials failed. */
  private async fetchToken(ch: Challenge, scopes: string[], creds?: Credentials): Promise<CachedToken> {
    const realm = new URL(ch.params.realm)
    const {registry, host} = this.opts
    let res
    if (creds?.token) {
      noteSecret(creds.token)
      // An identity token from `docker login` is an OAuth2 refresh token.
      const form = new URLSearchParams({grant_type: 'refresh_token', refresh_token: creds.token, client_id: 'airlock'})
      if (ch.params.service) form.set('service', ch.params.service)
      if (scopes.length > 0) form.set('scope', scopes.join(' '))
      res = await this.transport.exchange(realm.toString(), 'POST', {
        headers: {'content-type': 'application/x-www-form-urlencoded'},
        body: form.toString(),
        followRedirect: false,
        maxBody: MAX_ERROR_BODY,
      })
    } else {
      const u = new URL(realm)
      if (ch.params.service) u.searchParams.set('service', ch.params.service)
      for (const s of scopes) u.searchParams.append('scope', s)
      const headers: Record<string, string> = creds?.username === undefined ? {} : {authorization: basicHeader(creds)}
      res = await this.transport.exchange(u.toString(), 'GET', {headers, followRedirect: true, maxBody: MAX_ERROR_BODY})
    }
    if (res.status === 401 || res.status === 403) {
      throw withHint(
        new RegistryError(
          `${registry}: the token service ${realm.host} refused ${creds ? 'the credentials' : 'anonymous access'} (HTTP ${res.status})`,
          {
            host,
            status: res.status,
          },
        ),
        this.hint(res.status, creds),
      )
    }
    if (res.status < 200 || res.status >= 300)
      throw responseError(res, {registry, host, what: `a token from ${realm.host}`})
    let j: {token?: string; access_token?: string; expires_in?: number}
    try {
      j = JSON.parse(res.body.toString('utf8'))
    } catch {
      throw new RegistryError(`${registry}: the token service ${realm.host} sent no JSON`, {host, status: res.status})
    }
    const value = j.token || j.access_token
    if (!value)
      throw new RegistryError(`${registry}: the token service ${realm.host} sent no token`, {host, status: res.status})
    const ttl = typeof j.expires_in === 'number' && j.expires_in > 0 ? j.expires_in : 60
    // Renew a little early so a token does not expire between check and use.
    return {value, expires: Date.now() + Math.max(1, ttl - 10) * 1000}
  }

  /**
   * What to suggest after a 401/403. Credentials that were sent are named by
   * user and origin (never the password): logging in again with the same
   * ones would not help.
   */
  hint(status: number, creds: Credentials | undefined = this.resolvedCreds): string {
    if (!creds)
      return 'log in with `docker login` or pass --username and --password; check that the account may use this repository'
    const from = this.opts.credentials ? '--username/--password' : 'the Docker config'
    if (creds.username === undefined)
      return `the registry refused the token from ${from}: log in again with \`docker login\``
    const whose = `user ${creds.username} (from ${from})`
    return status === 403
      ? `the registry refused access for ${whose}: check the username and password, and that the account may use this repository`
      : `the registry refused the credentials for ${whose}: check the username and password`
  }
}
