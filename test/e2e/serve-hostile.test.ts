import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {closeSync, openSync} from 'node:fs'
import {chmod, mkdir, readdir, readFile, rename, symlink, writeFile} from 'node:fs/promises'
import {connect, type Socket} from 'node:net'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {fileData, type FixtureFile, makeBundle} from '../helpers/bundle-fixture.js'
import {stopChild, trackChild} from '../helpers/cleanup.js'
import {repoRoot} from '../helpers/cli.js'
import {harnessRequest, waitFor} from '../helpers/http.js'
import {freePort} from '../helpers/ports.js'
import {type BundleFixture, makeRegistryBundle} from '../helpers/registry-bundle-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

// `airlock serve` against clients and local users that mean harm: pipelined bursts, links swapped into its
// cache, a cache folder someone else made, clients that stall. The serve process is the real one, watched
// from outside (/proc/PID/fd and /proc/PID/status); the clients are raw sockets, as an attacker's would be.

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

interface Served {
  url: string
  port: number
  pid: number
  log: string
  stop(): Promise<void>
}

async function startServe(bundle: string, cacheDir: string, env: Record<string, string> = {}): Promise<Served> {
  const port = await freePort()
  const log = join(await makeTempDir('airlock-serve-hostile-log-'), 'serve.log')
  const fd = openSync(log, 'a')
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'bin', 'run.js'), 'serve', bundle, '--listen', `127.0.0.1:${port}`, '--cache-dir', cacheDir],
    {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: {...process.env, CI: '1', NO_COLOR: '1', ...env},
    },
  )
  closeSync(fd)
  trackChild(child)
  const url = `http://127.0.0.1:${port}`
  await waitFor(
    'airlock serve',
    async () => (await harnessRequest(`${url}/v2/`)).status === 200,
    60_000,
    () => readFile(log, 'utf8'),
  )
  return {url, port, pid: child.pid!, log, stop: () => stopChild(child)}
}

/** `airlock serve` run to its end (it is expected to refuse): exit code and what it printed. */
function serveRefusal(bundle: string, cacheDir: string): Promise<{code: number | null; out: string}> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'bin', 'run.js'), 'serve', bundle, '--listen', '127.0.0.1:0', '--cache-dir', cacheDir],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {...process.env, CI: '1', NO_COLOR: '1'},
      },
    )
    trackChild(child)
    let out = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({code, out})
    })
  })
}

const openFds = async (pid: number) => (await readdir(`/proc/${pid}/fd`)).length
const rssMb = async (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) / 1024

function connectTo(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s))
    s.once('error', reject)
  })
}

/** Resolves with the ms from now until the server closes `s`, or undefined if it is still open after `limitMs`. */
function closedWithin(s: Socket, limitMs: number): Promise<number | undefined> {
  const t0 = Date.now()
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), limitMs)
    s.once('close', () => {
      clearTimeout(timer)
      resolve(Date.now() - t0)
    })
    s.on('error', () => {})
  })
}

let images: BundleFixture
let layer: {digest: string; size: number}
let repo: string

beforeAll(async () => {
  // Bigger than what the kernel's socket buffers hold, so a client that stops reading stalls the server's writes.
  images = await makeRegistryBundle([{ref: 'docker.io/team/big:1', layers: 1, layerSize: 40_000_000}])
  layer = images.images[0].blobs.reduce((a, b) => (b.size > a.size ? b : a))
  repo = 'team/big'
}, 120_000)

describe('airlock serve: a pipelined burst', () => {
  let s: Served
  afterAll(async () => s?.stop())

  it('1,000 pipelined blob GETs on one connection, then a disconnect, leave no descriptor open and little memory', async () => {
    s = await startServe(images.dir, join(await makeTempDir('airlock-serve-cache-'), 'cache'))
    // Warm up (the first request loads code), then take the baseline.
    expect((await harnessRequest(`${s.url}/v2/${repo}/blobs/${layer.digest}`)).body.length).toBe(layer.size)
    await new Promise((r) => setTimeout(r, 300))
    const fds0 = await openFds(s.pid)
    const rss0 = await rssMb(s.pid)

    const sock = await connectTo(s.port)
    sock.on('error', () => {})
    const one = `GET /v2/${repo}/blobs/${layer.digest} HTTP/1.1\r\nHost: x\r\n\r\n`
    // Read a little, so the first response is under way (unless serve cuts the connection first), then go.
    sock.write(one.repeat(1000))
    await new Promise<void>((resolve) => {
      sock.once('data', () => resolve())
      sock.once('close', () => resolve())
    })
    sock.pause()
    await new Promise((r) => setTimeout(r, 1000))
    sock.destroy()

    let fds = 0
    await waitFor(
      'descriptors back near the baseline',
      async () => (fds = await openFds(s.pid)) <= fds0 + 3,
      10_000,
    ).catch(() => {})
    const rss = await rssMb(s.pid)
    expect(fds, `open descriptors: ${fds0} before, ${fds} after`).toBeLessThanOrEqual(fds0 + 3)
    expect(rss - rss0, `RSS ${rss0.toFixed(0)} MB before, ${rss.toFixed(0)} MB after`).toBeLessThan(150)
    // And it still answers.
    expect((await harnessRequest(`${s.url}/v2/`)).status).toBe(200)
  })

  it('the access log keeps the client address of an aborted transfer and escapes " in a URL; a HEAD 404 has Content-Length', async () => {
    const head = await harnessRequest(`${s.url}/no/such/file`, {method: 'HEAD'})
    expect(head.status).toBe(404)
    expect(head.headers['content-length']).toBe('14')
    const sock = await connectTo(s.port)
    sock.write('GET /a"b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    await new Promise<void>((resolve) => sock.once('close', () => resolve()).resume())
    await new Promise((r) => setTimeout(r, 300))
    const log = await readFile(s.log, 'utf8')
    expect(log).toContain('127.0.0.1 "GET /a\\"b HTTP/1.1" 404')
    expect(log).toMatch(
      new RegExp(`^127\\.0\\.0\\.1 "GET /v2/${repo}/blobs/${layer.digest} HTTP/1\\.1" 200 aborted`, 'm'),
    )
  })
})

describe('airlock serve: connections that never end', () => {
  let s: Served
  afterAll(async () => s?.stop())
  const STALL_MS = 1500

  it('closes a client that stops reading, and a slow-header one, within the configured time; a slow reader that keeps reading is not cut', async () => {
    s = await startServe(images.dir, join(await makeTempDir('airlock-serve-cache-'), 'cache'), {
      AIRLOCK_SERVE_TIMEOUT_MS: String(STALL_MS),
    })

    // A reader that stops: asks for 40 MB and reads nothing.
    const stalled = await connectTo(s.port)
    stalled.on('error', () => {})
    stalled.pause()
    stalled.write(`GET /v2/${repo}/blobs/${layer.digest} HTTP/1.1\r\nHost: x\r\n\r\n`)
    // Headers sent a byte every half second: never complete.
    const slow = await connectTo(s.port)
    slow.write('GET /v2/ HTTP/1.1\r\n')
    const drip = setInterval(() => slow.writable && slow.write('X'), 500)
    // A reader that reads 128 KiB every 300 ms: slow, but making progress the whole time.
    const reader = await connectTo(s.port)
    reader.pause()
    reader.write(`GET /v2/${repo}/blobs/${layer.digest} HTTP/1.1\r\nHost: x\r\n\r\n`)
    let got = 0
    const trickle = setInterval(() => {
      let c: Buffer | null
      let n = 0
      while (n < 128 << 10 && (c = reader.read() as Buffer | null) !== null) n += c.length
      got += n
    }, 300)
    const readerClosed = closedWithin(reader, 5 * STALL_MS)

    const slowMs = await closedWithin(slow, 5 * STALL_MS)
    clearInterval(drip)
    expect(slowMs, 'the slow-header client is closed').toBeDefined()
    expect(await readerClosed, 'the slow reader still making progress is not cut').toBeUndefined()
    clearInterval(trickle)
    expect(got).toBeGreaterThan(256 << 10)
    reader.destroy()

    // The stalled reader, which stopped reading 5 stall times ago, reads again: what the kernel held, then the end,
    // short of the whole body. (A paused socket does not see the server close it; reading shows it.)
    let stalledGot = 0
    const cut = new Promise<void>((resolve) => {
      stalled.on('data', (c: Buffer) => (stalledGot += c.length))
      stalled.once('close', () => resolve())
    })
    stalled.resume()
    const ended = await Promise.race([
      cut.then(() => true),
      new Promise<boolean>((r) => setTimeout(() => r(false), 20_000)),
    ])
    stalled.destroy()
    expect(
      ended && stalledGot < layer.size,
      `the stalled reader was cut (${stalledGot} of ${layer.size} bytes, connection ${ended ? 'closed' : 'still open'})`,
    ).toBe(true)
  })
})

describe('airlock serve: its file cache', () => {
  const FILES: FixtureFile[] = [
    {path: 'dl.example/bin/kubeadm', data: fileData(50_000), executable: true},
    {path: 'dl.example/bin/kubelet', data: fileData(40_000), executable: true},
  ]
  let bundle: string
  let secret: Buffer
  let secretPath: string

  beforeAll(async () => {
    const base = await makeTempDir('airlock-serve-cachelink-')
    bundle = join(base, 'bundle')
    await makeBundle(bundle, FILES)
    // As long as the file it stands in for: the whole of it would go out with a 200.
    secret = Buffer.from('root:$6$not-for-http-clients:19000:0:99999:7:::\n'.repeat(2000)).subarray(
      0,
      FILES[0].data.length,
    )
    secretPath = join(base, 'shadow')
    await writeFile(secretPath, secret, {mode: 0o600})
  })

  it("a link swapped in for a cached file after verification is not served: the target's bytes never go out", async () => {
    const cacheRoot = join(await makeTempDir('airlock-serve-cache-'), 'cache')
    const s = await startServe(bundle, cacheRoot)
    try {
      const [folder] = await readdir(cacheRoot)
      const cached = join(cacheRoot, folder, 'dl.example', 'bin', 'kubeadm')
      const ok = await harnessRequest(`${s.url}/dl.example/bin/kubeadm`)
      expect(sha256(ok.body)).toBe(sha256(FILES[0].data))
      // The file replaced by a link to a secret, as someone able to write there could.
      await rename(cached, `${cached}.old`)
      await symlink(secretPath, cached)
      const r = await harnessRequest(`${s.url}/dl.example/bin/kubeadm`).catch((err: Error) => ({
        status: 0,
        body: Buffer.from(err.message),
      }))
      expect(r.body.includes(secret.subarray(0, 20))).toBe(false)
      expect(r.status).not.toBe(200)
      // A folder on the way swapped for a link to another folder holding a file of the same name: refused too.
      const elsewhere = join(cacheRoot, '..', 'elsewhere')
      await mkdir(elsewhere)
      await writeFile(join(elsewhere, 'kubelet'), secret.subarray(0, FILES[1].data.length))
      await rename(join(cacheRoot, folder, 'dl.example', 'bin'), join(cacheRoot, folder, 'dl.example', 'bin.old'))
      await symlink(elsewhere, join(cacheRoot, folder, 'dl.example', 'bin'))
      const r2 = await harnessRequest(`${s.url}/dl.example/bin/kubelet`).catch((err: Error) => ({
        status: 0,
        body: Buffer.from(err.message),
      }))
      expect(r2.body.includes(secret.subarray(0, 20))).toBe(false)
      expect(r2.status).not.toBe(200)
    } finally {
      await s.stop()
    }
  })

  it('refuses a cache folder that others may write, or one another user made', async () => {
    // The folder a bundle's files go to is named after its bundle.json: anyone can make it in advance.
    const cacheRoot = join(await makeTempDir('airlock-serve-cache-'), 'cache')
    const first = await startServe(bundle, cacheRoot)
    await first.stop()
    const [folder] = await readdir(cacheRoot)
    await chmod(join(cacheRoot, folder), 0o777)
    const open = await serveRefusal(bundle, cacheRoot)
    expect(open.code).toBe(1)
    expect(open.out).toContain(`${join(cacheRoot, folder)} may be written by other users`)
    expect(open.out).not.toContain('    at ')
    await chmod(join(cacheRoot, folder), 0o755)

    // A shared cache root others may write (no sticky bit): they could swap the folder after it was checked.
    await chmod(cacheRoot, 0o777)
    const shared = await serveRefusal(bundle, cacheRoot)
    expect(shared.code).toBe(1)
    expect(shared.out).toContain(`${cacheRoot} may be written by other users`)
    await chmod(cacheRoot, 0o755)

    // One made by another user: the tests run as root, so root makes the cache and nobody owns the folder.
    if (process.getuid?.() === 0) {
      const {chown} = await import('node:fs/promises')
      await chown(join(cacheRoot, folder), 65534, 65534)
      const foreign = await serveRefusal(bundle, cacheRoot)
      expect(foreign.code).toBe(1)
      expect(foreign.out).toContain(`${join(cacheRoot, folder)} belongs to another user (uid 65534)`)
    }
  })
})
