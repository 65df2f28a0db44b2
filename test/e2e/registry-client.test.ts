import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {sha256Digest} from '../../src/lib/content/digest.js'
import {MediaType} from '../../src/lib/content/media-types.js'
import {IntegrityError, RegistryError} from '../../src/lib/errors.js'
import {RegistryClient} from '../../src/lib/registry/client.js'

// A loopback fake registry for what the real one cannot be told to do: expire
// tokens, send schema 1, lie about digests, redirect blobs to another host.
type Handler = (req: IncomingMessage, res: ServerResponse) => void
let handler: Handler
let cdnHandler: Handler
let server: Server
let cdn: Server
let host: string
let cdnBase: string
const seen: {url: string; auth?: string}[] = []
const cdnSeen: {url: string; auth?: string; range?: string}[] = []
const policy = {attempts: 3, baseDelayMs: 5, maxDelayMs: 10}

async function listen(h: () => Handler): Promise<Server> {
  const s = createServer((req, res) => h()(req, res))
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r))
  return s
}

beforeAll(async () => {
  server = await listen(() => (req, res) => {
    seen.push({url: req.url ?? '', auth: req.headers.authorization})
    handler(req, res)
  })
  cdn = await listen(() => (req, res) => {
    cdnSeen.push({url: req.url ?? '', auth: req.headers.authorization, range: req.headers.range})
    cdnHandler(req, res)
  })
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`
  cdnBase = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise((r) => server.close(r))
  await new Promise((r) => cdn.close(r))
})

beforeEach(() => {
  seen.length = 0
  cdnSeen.length = 0
})

const manifest = Buffer.from(
  JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociManifest, config: {}, layers: []}),
)
const manifestDigest = sha256Digest(manifest)

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, {'content-type': 'application/json', ...headers})
  res.end(JSON.stringify(body))
}

/** Bearer auth: tokens handed out at /token are valid `validUses` times each. */
function bearerRegistry(opts: {validUses: number; onManifest?: (res: ServerResponse) => void}): {
  tokens: string[]
  scopes: string[]
} {
  const state = {tokens: [] as string[], scopes: [] as string[], uses: new Map<string, number>()}
  handler = (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x')
    if (url.pathname === '/token') {
      if (req.headers.authorization !== `Basic ${Buffer.from('alice:s3cret').toString('base64')}`)
        return json(res, 401, {})
      state.scopes.push(url.searchParams.getAll('scope').join(' '))
      const t = `tok${state.tokens.length + 1}`
      state.tokens.push(t)
      state.uses.set(t, 0)
      return json(res, 200, {access_token: t, expires_in: 300})
    }
    const challenge = `Bearer realm="http://${host}/token",service="fake"`
    const tok = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1]
    const n = tok ? state.uses.get(tok) : undefined
    if (n === undefined || n >= opts.validUses) {
      return json(
        res,
        401,
        {errors: [{code: 'UNAUTHORIZED', message: 'authentication required'}]},
        {'www-authenticate': challenge},
      )
    }
    state.uses.set(tok!, n + 1)
    if (url.pathname === '/v2/') return json(res, 200, {})
    if (opts.onManifest) return opts.onManifest(res)
    res.writeHead(200, {'content-type': MediaType.ociManifest, 'docker-content-digest': manifestDigest})
    res.end(manifest)
  }
  return state
}

describe('RegistryClient', () => {
  it('falls back to plain HTTP on loopback, gets a Bearer token with Basic credentials, and caches it per scope', async () => {
    const state = bearerRegistry({validUses: 100})
    const c = new RegistryClient({registry: host, credentials: {username: 'alice', password: 's3cret'}, policy})
    const m = await c.getManifest('team/app', 'v1')
    expect(m).toEqual({bytes: manifest, mediaType: MediaType.ociManifest, digest: manifestDigest})
    await c.getManifest('team/app', manifestDigest)
    expect(state.tokens).toEqual(['tok1'])
    expect(state.scopes).toEqual(['repository:team/app:pull'])
    expect(await c.base()).toBe(`http://${host}`)
  })

  it('refreshes an expired token once on 401', async () => {
    const state = bearerRegistry({validUses: 1})
    const c = new RegistryClient({registry: host, credentials: {username: 'alice', password: 's3cret'}, policy})
    await c.getManifest('team/app', 'v1')
    await c.getManifest('team/app', 'v1')
    expect(state.tokens.length).toBe(2)
  })

  it('fails clearly on wrong credentials without printing them', async () => {
    bearerRegistry({validUses: 100})
    const c = new RegistryClient({registry: host, credentials: {username: 'alice', password: 'wrong-pass'}, policy})
    const err = await c.getManifest('team/app', 'v1').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RegistryError)
    expect((err as RegistryError).message).toMatch(/refused the credentials/)
    expect(JSON.stringify({m: (err as Error).message, s: (err as RegistryError).suggestions})).not.toContain(
      'wrong-pass',
    )
    expect((err as RegistryError).suggestions).toContain(
      'the registry refused the credentials for user alice (from --username/--password): check the username and password',
    )
  })

  it('hints at docker login only when no credentials were sent; refused ones are named by user and origin, never by password', async () => {
    const good = `Basic ${Buffer.from('alice:s3cret').toString('base64')}`
    handler = (req, res) => {
      if (req.headers.authorization === good) return json(res, 200, {})
      json(
        res,
        401,
        {errors: [{code: 'UNAUTHORIZED', message: 'authentication required'}]},
        {'www-authenticate': 'Basic realm="fake"'},
      )
    }
    const hintsOf = async (c: RegistryClient): Promise<string> => {
      const err = await c.getManifest('team/app', 'v1').catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RegistryError)
      expect((err as RegistryError).status).toBe(401)
      return (err as RegistryError).suggestions.join('\n')
    }
    const anonymous = await hintsOf(new RegistryClient({registry: host, dockerConfig: false, policy}))
    expect(anonymous).toMatch(/docker login.*--username and --password/)

    const flags = await hintsOf(
      new RegistryClient({registry: host, credentials: {username: 'alice', password: 'Wr0ng-flag-pw'}, policy}),
    )
    expect(flags).toContain(
      'refused the credentials for user alice (from --username/--password): check the username and password',
    )
    expect(flags).not.toMatch(/docker login|pass --username/)
    expect(flags).not.toContain('Wr0ng-flag-pw')

    const dir = await mkdtemp(join(tmpdir(), 'airlock-client-'))
    const prev = process.env.DOCKER_CONFIG
    try {
      await writeFile(
        join(dir, 'config.json'),
        JSON.stringify({auths: {[host]: {auth: Buffer.from('alice:Wr0ng-config-pw').toString('base64')}}}),
      )
      process.env.DOCKER_CONFIG = dir
      const config = await hintsOf(new RegistryClient({registry: host, policy}))
      expect(config).toContain(
        'refused the credentials for user alice (from the Docker config): check the username and password',
      )
      expect(config).not.toMatch(/docker login|pass --username/)
      expect(config).not.toContain('Wr0ng-config-pw')
    } finally {
      if (prev === undefined) delete process.env.DOCKER_CONFIG
      else process.env.DOCKER_CONFIG = prev
      await rm(dir, {recursive: true, force: true})
    }
  })

  it('refuses Docker schema 1', async () => {
    const s1 = Buffer.from(JSON.stringify({schemaVersion: 1, name: 'x', fsLayers: []}))
    handler = (_req, res) => {
      res.writeHead(200, {'content-type': MediaType.dockerSchema1Signed})
      res.end(s1)
    }
    const c = new RegistryClient({registry: host, policy})
    await expect(c.getManifest('old/app', 'v1')).rejects.toThrow(
      /Docker schema 1 manifest, which airlock does not support/,
    )
  })

  it('checks manifest bytes against the digest asked for and against Docker-Content-Digest', async () => {
    const other = `sha256:${'1'.repeat(64)}`
    handler = (_req, res) => {
      res.writeHead(200, {'content-type': MediaType.ociManifest, 'docker-content-digest': other})
      res.end(manifest)
    }
    const c = new RegistryClient({registry: host, policy})
    await expect(c.getManifest('a/b', other)).rejects.toBeInstanceOf(IntegrityError)
    await expect(c.getManifest('a/b', 'v1')).rejects.toThrow(/Docker-Content-Digest/)
  })

  it('keeps the OCI error codes, does not retry a 404, retries a 503', async () => {
    let calls = 0
    handler = (req, res) => {
      if (req.url === '/v2/') return json(res, 200, {})
      calls++
      if (req.url?.includes('flaky') && calls === 1) return json(res, 503, {}, {'retry-after': '0'})
      if (req.url?.includes('flaky')) {
        res.writeHead(200, {'content-type': MediaType.ociManifest})
        return res.end(manifest)
      }
      json(res, 404, {errors: [{code: 'MANIFEST_UNKNOWN', message: 'manifest unknown'}]})
    }
    const c = new RegistryClient({registry: host, policy})
    const err = (await c.getManifest('a/b', 'nope').catch((e: unknown) => e)) as RegistryError
    expect(err).toBeInstanceOf(RegistryError)
    expect(err.codes).toEqual(['MANIFEST_UNKNOWN'])
    expect(err.status).toBe(404)
    expect(err.repository).toBe('a/b')
    expect(err.message).toBe(`${host}/a/b:nope: no such tag (HTTP 404 MANIFEST_UNKNOWN)`)
    expect(calls).toBe(1)
    calls = 0
    await c.getManifest('a/flaky', 'v1')
    expect(calls).toBe(2)
  })

  it('follows blob redirects, dropping Authorization for another host and keeping Range', async () => {
    bearerRegistry({validUses: 100})
    const inner = handler
    handler = (req, res) => {
      if (req.url?.includes('/blobs/') && !req.url.includes('moved')) {
        if (!req.headers.authorization) return inner(req, res)
        res.writeHead(307, {location: `${cdnBase}/bucket/blob?sig=1`})
        return res.end()
      }
      inner(req, res)
    }
    cdnHandler = (req, res) => {
      const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0)
      res.writeHead(start > 0 ? 206 : 200, start > 0 ? {'content-range': `bytes ${start}-9/10`} : {})
      res.end(Buffer.from('0123456789').subarray(start))
    }
    const c = new RegistryClient({registry: host, credentials: {username: 'alice', password: 's3cret'}, policy})
    await c.getManifest('team/app', 'v1')
    const opened = await c.blobOpener('team/app', `sha256:${'2'.repeat(64)}`)(4)
    let body = ''
    for await (const chunk of opened.stream) body += chunk
    expect(body).toBe('456789')
    expect(opened.start).toBe(4)
    expect(cdnSeen).toEqual([{url: '/bucket/blob?sig=1', auth: undefined, range: 'bytes=4-'}])
    expect(seen.some((s) => s.url.includes('/blobs/') && s.auth === 'Bearer tok1')).toBe(true)
  })

  it('says which registry is down after the retries', async () => {
    const dead = createServer()
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r))
    const port = (dead.address() as AddressInfo).port
    await new Promise((r) => dead.close(r))
    const c = new RegistryClient({registry: `127.0.0.1:${port}`, policy})
    await expect(c.getManifest('a/b', 'v1')).rejects.toThrow(
      new RegExp(`^127.0.0.1:${port}: cannot reach the registry: connect ECONNREFUSED \\(3 attempts\\)$`),
    )
  })
  it("asks a token service that answers 503 at most the policy's attempts (retries live in one layer)", async () => {
    let tokenCalls = 0
    handler = (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      if (url.pathname === '/token') {
        tokenCalls++
        return json(res, 503, {errors: [{code: 'UNAVAILABLE', message: 'try later'}]})
      }
      return json(
        res,
        401,
        {errors: [{code: 'UNAUTHORIZED'}]},
        {'www-authenticate': `Bearer realm="http://${host}/token",service="fake"`},
      )
    }
    const c = new RegistryClient({registry: host, dockerConfig: false, policy})
    await expect(c.getManifest('a/b', 'v1')).rejects.toMatchObject({status: 503})
    expect(tokenCalls).toBe(policy.attempts)
  })

  it('lists tags page after page through relative Link headers', async () => {
    const pages: Record<string, {tags: string[]; next?: string}> = {
      '': {tags: ['a', 'b'], next: '/v2/x/y/tags/list?n=2&last=b'},
      b: {tags: ['c', 'd'], next: '/v2/x/y/tags/list?n=2&last=d'},
      d: {tags: ['e']},
    }
    handler = (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x')
      if (url.pathname === '/v2/') return json(res, 200, {})
      const page = pages[url.searchParams.get('last') ?? '']
      json(res, 200, {name: 'x/y', tags: page.tags}, page.next ? {link: `<${page.next}>; rel="next"`} : {})
    }
    const c = new RegistryClient({registry: host, dockerConfig: false, policy})
    expect(await c.listTags('x/y', {pageSize: 2})).toEqual(['a', 'b', 'c', 'd', 'e'])
    expect(seen.filter((r) => r.url.includes('tags/list')).map((r) => r.url)).toEqual([
      '/v2/x/y/tags/list?n=2',
      '/v2/x/y/tags/list?n=2&last=b',
      '/v2/x/y/tags/list?n=2&last=d',
    ])
  })
})
