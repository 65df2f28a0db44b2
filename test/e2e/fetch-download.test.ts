import {createHash, randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'

import {afterAll, beforeAll, beforeEach, describe, expect, it} from 'vitest'

import {IntegrityError} from '../../src/lib/errors.js'
import {downloadVerified} from '../../src/lib/fetch/download.js'
import {createHttp, openStream} from '../../src/lib/fetch/http.js'
import {SMALL_FILE} from '../../src/lib/store/small-files.js'
import {makeTempDir} from '../helpers/tmp.js'

// A loopback HTTP server whose faults (ignore Range, cut the body, serve wrong bytes, trickle)
// are switched per test; these are the faults a real static server cannot be told to make.
// Each test runs with a body that streams (past SMALL_FILE) and one read whole.
let body = randomBytes(256 * 1024)
let digest = ''
let mode: 'ok' | 'no-range' | 'cut' | 'corrupt' | 'trickle' = 'ok'
let served = 0
let requests = 0
let ranges: string[] = []
let server: Server
let base: string

beforeAll(async () => {
  server = createServer((req, res) => {
    requests++
    ranges.push(req.headers.range ?? '')
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '')
    let start = m && mode !== 'no-range' ? Number(m[1]) : 0
    const data = mode === 'corrupt' ? Buffer.from(body).fill(7, 1000, 1001) : body
    if (start > 0) {
      res.writeHead(206, {
        'content-range': `bytes ${start}-${data.length - 1}/${data.length}`,
        'content-length': data.length - start,
      })
    } else {
      start = 0
      res.writeHead(200, {'content-length': data.length})
    }
    const chunk = data.subarray(start)
    if (mode === 'trickle') {
      // Half at once, then a byte every 100 ms; the Range request that follows is served in full.
      let at = Math.floor(chunk.length / 2)
      res.write(chunk.subarray(0, at))
      const t = setInterval(() => {
        if (res.destroyed || at >= chunk.length) return clearInterval(t)
        res.write(chunk.subarray(at, ++at))
      }, 100)
      res.on('close', () => clearInterval(t))
      mode = 'ok'
      return
    }
    if (mode === 'cut') {
      const half = chunk.subarray(0, Math.floor(chunk.length / 2))
      served += half.length
      // Cut only once the client has had time to take the half in: cut at once, the client may drop it unread.
      res.write(half, () => setTimeout(() => res.destroy(), 50))
      mode = 'ok'
      return
    }
    served += chunk.length
    res.end(chunk)
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/blob`
})

afterAll(
  () =>
    new Promise<void>((r) => {
      server.closeAllConnections()
      server.close(() => r())
    }),
)

beforeEach(() => {
  mode = 'ok'
  served = 0
  requests = 0
  ranges = []
})

async function setup() {
  const dir = await makeTempDir('airlock-dl-')
  const http = await createHttp()
  return {
    dir,
    req: {
      open: (offset: number) => openStream(http, base, {offset}),
      digest,
      size: body.length,
      dest: join(dir, 'final'),
      partial: join(dir, 'tmp', 'x.part'),
      label: 'blob under test',
      policy: {attempts: 3, baseDelayMs: 1, maxDelayMs: 2},
    },
  }
}

describe.each([
  ['streamed', 256 * 1024],
  ['read whole', 16 * 1024],
])('downloadVerified, a body %s', (_how, size) => {
  beforeAll(() => {
    expect(size > SMALL_FILE).toBe(_how === 'streamed')
    body = randomBytes(size)
    digest = `sha256:${createHash('sha256').update(body).digest('hex')}`
  })

  it('writes verified content under its final name', async () => {
    const {req} = await setup()
    const r = await downloadVerified(req)
    expect(r).toMatchObject({bytesFetched: body.length, bytesResumed: 0, size: body.length})
    expect(await readFile(req.dest)).toEqual(body)
    expect(existsSync(req.partial)).toBe(false)
  })

  it('resumes a cut transfer with Range, fetching only the rest', async () => {
    const {req} = await setup()
    mode = 'cut'
    const r = await downloadVerified(req)
    // The second request asks only for what the first did not deliver.
    expect(requests).toBe(2)
    expect(ranges[0]).toBe('')
    expect(ranges[1]).toMatch(/^bytes=[1-9]\d*-$/)
    expect(r.bytesResumed).toBe(0)
    expect(r.bytesFetched).toBeLessThan(body.length * 1.6)
    expect(await readFile(req.dest)).toEqual(body)
  })

  it('continues a partial file left by an earlier run', async () => {
    const {req} = await setup()
    await downloadVerified({...req, dest: join(req.dest + '-seed')})
    const {mkdir} = await import('node:fs/promises')
    await mkdir(join(req.partial, '..'), {recursive: true})
    const kept = Math.floor(body.length / 3)
    await writeFile(req.partial, body.subarray(0, kept))
    served = 0
    const r = await downloadVerified(req)
    expect(r.bytesResumed).toBe(kept)
    expect(served).toBe(body.length - kept)
    expect(await readFile(req.dest)).toEqual(body)
  })

  it('starts over when the server ignores Range', async () => {
    const {req} = await setup()
    const {mkdir} = await import('node:fs/promises')
    await mkdir(join(req.partial, '..'), {recursive: true})
    await writeFile(req.partial, body.subarray(0, Math.floor(body.length / 5)))
    mode = 'no-range'
    await downloadVerified(req)
    expect(served).toBe(body.length)
    expect(await readFile(req.dest)).toEqual(body)
  })

  it('never makes corrupt bytes visible: retries once, then names both digests', async () => {
    const {req} = await setup()
    mode = 'corrupt'
    const err = await downloadVerified(req).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as IntegrityError).message).toContain(`expected ${digest}`)
    expect((err as IntegrityError).message).toContain('blob under test')
    expect(requests).toBe(2)
    expect(existsSync(req.dest)).toBe(false)
    expect(existsSync(req.partial)).toBe(false)
  })

  it('refuses a body longer than the size it was asked for, and leaves nothing', async () => {
    const {req} = await setup()
    const err = await downloadVerified({...req, size: body.length - 10}).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toContain(`more than ${body.length - 10} bytes`)
    expect(existsSync(req.dest)).toBe(false)
    expect(existsSync(req.partial)).toBe(false)
  })

  it('abandons a transfer under the speed floor and resumes it with Range from what came', async () => {
    const {req} = await setup()
    mode = 'trickle'
    const r = await downloadVerified({...req, lowSpeed: {bytesPerSecond: 1000, seconds: 1}})
    expect(ranges[0]).toBe('')
    expect(Number(/^bytes=(\d+)-$/.exec(ranges[1])![1])).toBeGreaterThanOrEqual(Math.floor(body.length / 2))
    expect(r.size).toBe(body.length)
    expect(await readFile(req.dest)).toEqual(body)
  })

  it('stops when its signal aborts, keeping what came for the next run', async () => {
    const {req} = await setup()
    mode = 'trickle'
    const ac = new AbortController()
    setTimeout(() => ac.abort(new Error('stopped by the test')), 300)
    const err = await downloadVerified({...req, signal: ac.signal}).catch((e: unknown) => e)
    // The signal's reason (read whole) or the pipeline's AbortError (streamed).
    expect((err as Error).message).toMatch(/stopped by the test|aborted/)
    expect(existsSync(req.dest)).toBe(false)
    expect((await readFile(req.partial)).length).toBeGreaterThanOrEqual(Math.floor(body.length / 2))
  })
})
