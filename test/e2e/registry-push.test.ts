import {createHash, randomBytes} from 'node:crypto'
import {createServer, type IncomingMessage, type Server, type ServerResponse} from 'node:http'
import type {AddressInfo} from 'node:net'
import {Readable} from 'node:stream'

import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {IntegrityError, RegistryError} from '../../src/lib/errors.js'
import {RegistryClient} from '../../src/lib/registry/client.js'
import {RegistryPusher} from '../../src/lib/registry/push.js'

/**
 * A small in-process registry that speaks just the upload protocol, with the
 * knobs the real one lacks: a minimum chunk length, a declined mount, a chunk
 * that fails half-way, a manifest digest that lies.
 */
interface Upload {
  data: Buffer[]
  size: number
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

let server: Server
let host: string
const uploads = new Map<string, Upload>()
const blobs = new Map<string, Buffer>()
let log: string[] = []
let knobs: {chunkMin?: number; declineMount?: boolean; failPatchOnce?: boolean; lieDigest?: boolean} = {}
let patchFailed = false

async function body(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url!, `http://${host}`)
  log.push(`${req.method} ${url.pathname}${url.search}`)
  const send = (status: number, headers: Record<string, string> = {}) => {
    res.writeHead(status, headers)
    res.end()
  }
  if (url.pathname === '/v2/') return send(200)
  let m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(url.pathname)
  if (m && req.method === 'HEAD') {
    const b = blobs.get(m[2])
    return b ? send(200, {'content-length': String(b.length)}) : send(404)
  }
  m = /^\/v2\/(.+)\/blobs\/uploads\/$/.exec(url.pathname)
  if (m && req.method === 'POST') {
    await body(req)
    const mount = url.searchParams.get('mount')
    if (mount && !knobs.declineMount && blobs.has(mount)) return send(201, {location: `/v2/${m[1]}/blobs/${mount}`})
    const id = randomBytes(8).toString('hex')
    uploads.set(id, {data: [], size: 0})
    const h: Record<string, string> = {location: `/v2/${m[1]}/blobs/uploads/${id}?_state=x`, range: '0-0'}
    if (knobs.chunkMin) h['oci-chunk-min-length'] = String(knobs.chunkMin)
    return send(202, h)
  }
  m = /^\/v2\/(.+)\/blobs\/uploads\/([a-f0-9]+)$/.exec(url.pathname)
  if (m) {
    const up = uploads.get(m[2])
    if (!up) return send(404)
    const loc = `/v2/${m[1]}/blobs/uploads/${m[2]}?_state=y`
    if (req.method === 'GET') return send(204, {location: loc, range: `0-${up.size - 1}`})
    if (req.method === 'PATCH') {
      const range = /^(\d+)-(\d+)$/.exec(String(req.headers['content-range']))
      if (!range || Number(range[1]) !== up.size) return send(416)
      const data = await body(req)
      if (knobs.failPatchOnce && !patchFailed && up.size > 0) {
        // Keep half of the chunk, then fail: the client must ask where the upload stands.
        patchFailed = true
        const half = data.subarray(0, Math.floor(data.length / 2))
        up.data.push(half)
        up.size += half.length
        return send(503)
      }
      up.data.push(data)
      up.size += data.length
      return send(202, {location: loc, range: `0-${up.size - 1}`})
    }
    if (req.method === 'PUT') {
      const data = await body(req)
      up.data.push(data)
      const all = Buffer.concat(up.data)
      const digest = url.searchParams.get('digest')!
      if (sha(all) !== digest) return send(400)
      blobs.set(digest, all)
      uploads.delete(m[2])
      return send(201, {'docker-content-digest': digest})
    }
  }
  m = /^\/v2\/(.+)\/manifests\/(.+)$/.exec(url.pathname)
  if (m && req.method === 'PUT') {
    const data = await body(req)
    return send(201, {'docker-content-digest': knobs.lieDigest ? sha(Buffer.from('other')) : sha(data)})
  }
  send(404)
}

beforeAll(async () => {
  server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()))
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`
})
afterAll(async () => new Promise<void>((r) => server.close(() => r())))
beforeEach(() => {
  log = []
  knobs = {}
  patchFailed = false
  blobs.clear()
})

function pusher(chunkSize: number, attempts = 3): RegistryPusher {
  const client = new RegistryClient({
    registry: host,
    dockerConfig: false,
    policy: {attempts, baseDelayMs: 5, maxDelayMs: 20},
  })
  return new RegistryPusher(client, {chunkSize})
}

function reader(data: Buffer) {
  return (offset: number, length: number) => Readable.from([data.subarray(offset, offset + length)])
}

describe('RegistryPusher', () => {
  it('uploads a small blob in one PUT and a large one in PATCH chunks', async () => {
    const p = pusher(1000)
    const small = randomBytes(900)
    const large = randomBytes(3500)
    expect(await p.pushBlob('a/b', {digest: sha(small), size: small.length}, reader(small))).toBe('uploaded')
    expect(log.filter((l) => l.startsWith('PATCH'))).toHaveLength(0)
    expect(await p.pushBlob('a/b', {digest: sha(large), size: large.length}, reader(large))).toBe('uploaded')
    expect(log.filter((l) => l.startsWith('PATCH'))).toHaveLength(4)
    expect(blobs.get(sha(large))).toEqual(large)
    expect(await p.hasBlob('a/b', sha(large), large.length)).toBe(true)
    expect(await p.hasBlob('a/b', sha(large), large.length + 1)).toBe(false)
  })

  it('honours OCI-Chunk-Min-Length', async () => {
    knobs.chunkMin = 2000
    const large = randomBytes(5000)
    await pusher(1000).pushBlob('a/b', {digest: sha(large), size: large.length}, reader(large))
    expect(log.filter((l) => l.startsWith('PATCH'))).toHaveLength(3) // 2000 + 2000 + 1000
    expect(blobs.get(sha(large))).toEqual(large)
  })

  it('resumes a chunk from where the registry says the upload stands', async () => {
    knobs.failPatchOnce = true
    const large = randomBytes(4000)
    await pusher(1000).pushBlob('a/b', {digest: sha(large), size: large.length}, reader(large))
    expect(log.some((l) => l.startsWith('GET /v2/a/b/blobs/uploads/'))).toBe(true)
    expect(log.filter((l) => l.startsWith('POST'))).toHaveLength(1) // same session, not restarted
    expect(blobs.get(sha(large))).toEqual(large)
  })

  it("retries a failed chunk under the client's own policy", async () => {
    knobs.failPatchOnce = true
    const large = randomBytes(4000)
    // One attempt allowed: the 503 stands, and no status check follows.
    const err = await pusher(1000, 1)
      .pushBlob('a/b', {digest: sha(large), size: large.length}, reader(large))
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RegistryError)
    expect((err as RegistryError).status).toBe(503)
    expect(log.some((l) => l.startsWith('GET /v2/a/b/blobs/uploads/'))).toBe(false)
    expect(blobs.has(sha(large))).toBe(false)
  })

  it('mounts from another repository, and uploads when the registry declines', async () => {
    const data = randomBytes(500)
    const p = pusher(1000)
    await p.pushBlob('one', {digest: sha(data), size: data.length}, reader(data))
    log = []
    expect(await p.pushBlob('two', {digest: sha(data), size: data.length}, reader(data), 'one')).toBe('mounted')
    expect(log).toEqual([`POST /v2/two/blobs/uploads/?mount=${encodeURIComponent(sha(data))}&from=one`])
    knobs.declineMount = true
    log = []
    expect(await p.pushBlob('three', {digest: sha(data), size: data.length}, reader(data), 'one')).toBe('uploaded')
    // The upload opened by the declined mount is used: one POST, then the PUT.
    expect(log.filter((l) => l.startsWith('POST'))).toHaveLength(1)
    expect(log.filter((l) => l.startsWith('PUT'))).toHaveLength(1)
  })

  it('puts a manifest and refuses a Docker-Content-Digest that is not ours', async () => {
    const m = Buffer.from('{"schemaVersion":2}')
    expect(await pusher(1000).putManifest('a/b', 'v1', m, 'application/vnd.oci.image.manifest.v1+json')).toBe(sha(m))
    knobs.lieDigest = true
    await expect(
      pusher(1000).putManifest('a/b', 'v1', m, 'application/vnd.oci.image.manifest.v1+json'),
    ).rejects.toBeInstanceOf(IntegrityError)
  })
})
