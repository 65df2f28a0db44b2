import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'

import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {createHttp, openStream} from '../../src/lib/fetch/http.js'
import {RegistryClient} from '../../src/lib/registry/client.js'

// Redirects follow to any host (release downloads and registries' object
// storage need that), but credentials never do. Two stand-in servers on two
// loopback origins (127.0.0.1 and 127.0.0.2): a real registry cannot be told
// to redirect a blob to an arbitrary origin, so the first plays a registry
// with Basic auth that answers a blob GET with 307, as registries backed by
// S3 do, and the second plays the storage; each records what it was sent.
type Seen = {url: string; authorization?: string}
let first: Server
let second: Server
let firstBase: string
let secondBase: string
const firstSeen: Seen[] = []
const secondSeen: Seen[] = []
const BASIC = `Basic ${Buffer.from('alice:Redirect-S3cret').toString('base64')}`

async function listen(
  host: string,
  handle: (req: IncomingMessage, res: ServerResponse) => void,
  seen: Seen[],
): Promise<Server> {
  const s = createServer((req, res) => {
    seen.push({url: req.url ?? '', authorization: req.headers.authorization})
    handle(req, res)
  })
  await new Promise<void>((r) => s.listen(0, host, r))
  return s
}

beforeAll(async () => {
  second = await listen('127.0.0.2', (_req, res) => res.end('0123456789'), secondSeen)
  secondBase = `http://127.0.0.2:${(second.address() as AddressInfo).port}`
  first = await listen(
    '127.0.0.1',
    (req, res) => {
      if (req.headers.authorization !== BASIC) {
        res.writeHead(401, {'www-authenticate': 'Basic realm="stand-in"', 'content-type': 'application/json'})
        return res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}')
      }
      if (req.url === '/v2/') return res.end('{}')
      res.writeHead(307, {location: `${secondBase}/storage${req.url}?sig=1`})
      res.end()
    },
    firstSeen,
  )
  firstBase = `http://127.0.0.1:${(first.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise((r) => first.close(r))
  await new Promise((r) => second.close(r))
})

beforeEach(() => {
  firstSeen.length = 0
  secondSeen.length = 0
})

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  let s = ''
  for await (const c of stream) s += String(c)
  return s
}

describe('credentials never follow a redirect to another origin', () => {
  it('a registry blob GET with Basic credentials, redirected, reaches the other origin without Authorization', async () => {
    const c = new RegistryClient({
      registry: new URL(firstBase).host,
      credentials: {username: 'alice', password: 'Redirect-S3cret'},
      policy: {attempts: 1, baseDelayMs: 1, maxDelayMs: 1},
    })
    const digest = `sha256:${'3'.repeat(64)}`
    const opened = await c.blobOpener('team/app', digest)(0)
    expect(await readAll(opened.stream)).toBe('0123456789')
    // The registry got the credentials; the storage got the request, and no credentials.
    expect(firstSeen.some((s) => s.url === `/v2/team/app/blobs/${digest}` && s.authorization === BASIC)).toBe(true)
    expect(secondSeen).toEqual([{url: `/storage/v2/team/app/blobs/${digest}?sig=1`, authorization: undefined}])
  })

  it('an HTTP download whose URL carries user:pass@, redirected, reaches the other origin without them', async () => {
    const http = await createHttp()
    const url = new URL(`${firstBase}/files/tool.tar.gz`)
    url.username = 'alice'
    url.password = 'Redirect-S3cret'
    const opened = await openStream(http, url.toString())
    expect(await readAll(opened.stream)).toBe('0123456789')
    expect(firstSeen).toEqual([{url: '/files/tool.tar.gz', authorization: BASIC}])
    expect(secondSeen).toEqual([{url: '/storage/files/tool.tar.gz?sig=1', authorization: undefined}])
  })
})
