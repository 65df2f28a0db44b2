import {createHash, randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {createServer} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'

import pLimit from 'p-limit'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse, stringify} from 'yaml'

import {IntegrityError, NetworkError} from '../../src/lib/errors.js'
import {mirroredPath} from '../../src/lib/manifest/mirror-path.js'
import type {ChartEntry, Manifest, UrlFileEntry} from '../../src/lib/manifest/types.js'
import type {PullContext} from '../../src/lib/pull/context.js'
import {pullFiles} from '../../src/lib/pull/files.js'
import {Store} from '../../src/lib/store/store.js'
import {type Progress, RecordingProgress, silentProgress, type TaskHandle} from '../../src/lib/ui/progress.js'
import {runCli} from '../helpers/cli.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {startFaultProxy} from '../helpers/proxy.js'
import {makeTempDir} from '../helpers/tmp.js'

// Binaries, packages and Helm charts pulled from a real nginx: pullFiles with a
// PullContext built here, and the CLI on a manifest file.

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const pos = {line: 1, column: 1}

let web: NginxServer
let slow: NginxServer
let root: string
const good = randomBytes(200_000)
const other = randomBytes(50_000)
const big = randomBytes(3 * 1024 * 1024)
const chartA1 = randomBytes(20_000)
const chartA2 = randomBytes(21_000)
const chartB = randomBytes(22_000)
const many = Array.from({length: 24}, () => randomBytes(30_000 + Math.floor(Math.random() * 30_000)))

async function put(rel: string, data: Buffer | string): Promise<void> {
  await mkdir(join(root, rel, '..'), {recursive: true})
  await writeFile(join(root, rel), data)
}

beforeAll(async () => {
  root = await makeTempDir('airlock-pull-files-web-')
  await put('files/good.bin', good)
  await put('files/other.bin', other)
  await put('files/big.bin', big)
  await put('files/good.bin.sha256', `${sha(good)}  good.bin\n`)
  await put('files/bare.sha256', `${sha(other)}\n`)
  await put('files/SHA256SUMS', `${sha(other)}  other.bin\n${sha(good)} *good.bin\n${sha(big)}  big.bin\n`)
  await put('files/broken.sha256', '<html>nothing here</html>\n')
  for (const [i, b] of many.entries()) await put(`many/f${i}.bin`, b)
  await put('repo/charts/alpha-1.0.0.tgz', chartA1)
  await put('repo/charts/alpha-1.1.0.tgz', chartA2)
  await put('cdn/beta-0.3.0.tgz', chartB)
  web = await startNginx({
    root,
    extraServerConfig: [
      // A redirect chain, as release downloads take to an object store.
      'location = /dl/good.bin { return 302 /hop/good.bin; }',
      'location = /hop/good.bin { return 302 /files/good.bin; }',
    ].join('\n'),
  })
  // The same files, a few MB per second per connection, so a download can be cut half-way.
  slow = await startNginx({root, rateLimit: '1m'})
  const index = {
    apiVersion: 'v1',
    entries: {
      alpha: [
        {
          apiVersion: 'v2',
          name: 'alpha',
          version: '1.1.0',
          appVersion: '2.0',
          digest: sha(chartA2),
          urls: ['charts/alpha-1.1.0.tgz'],
          created: '2024-02-01T00:00:00Z',
        },
        {
          apiVersion: 'v2',
          name: 'alpha',
          version: '1.0.0',
          digest: sha(chartA1),
          urls: ['charts/alpha-1.0.0.tgz'],
          created: '2024-01-01T00:00:00Z',
        },
        // Listed with the digest of another chart: must be refused.
        {apiVersion: 'v2', name: 'alpha', version: '0.9.0', digest: sha(chartA1), urls: ['charts/alpha-1.1.0.tgz']},
      ],
      beta: [
        {
          apiVersion: 'v2',
          name: 'beta',
          version: '0.3.0',
          digest: `sha256:${sha(chartB)}`,
          urls: [`${web.url}/cdn/beta-0.3.0.tgz`],
        },
      ],
    },
    generated: '2024-02-01T00:00:00Z',
  }
  await put('repo/index.yaml', stringify(index))
}, 120_000)

afterAll(async () => {
  await web?.stop()
  await slow?.stop()
})

function binary(url: string, sha256?: string, checksumUrl?: string): UrlFileEntry {
  return {
    kind: 'binary',
    url,
    ...(sha256 ? {sha256} : {}),
    ...(checksumUrl ? {checksumUrl} : {}),
    path: mirroredPath(url),
    pos,
  }
}

function chart(repo: string, name: string, version: string): ChartEntry {
  return {kind: 'chart', repo, name, version, path: `charts/${name}-${version}.tgz`, pos}
}

function manifestOf(binaries: UrlFileEntry[], packages: Manifest['packages'] = []): Manifest {
  return {
    file: 'test.yaml',
    dir: '.',
    name: 'test',
    platforms: ['linux/amd64'],
    registries: [],
    images: [],
    binaries,
    packages,
  }
}

async function context(
  opts: {concurrency?: number; progress?: Progress; signal?: AbortSignal; store?: string} = {},
): Promise<PullContext> {
  const store = new Store(opts.store ?? (await makeTempDir('airlock-pull-files-store-')))
  await store.init()
  const concurrency = opts.concurrency ?? 8
  return {
    store,
    pool: pLimit(concurrency),
    concurrency,
    progress: opts.progress ?? silentProgress,
    caFiles: [],
    signal: opts.signal,
    registry: () => {
      throw new Error('no registry in these tests')
    },
  }
}

async function listFiles(dir: string): Promise<string[]> {
  if (!existsSync(dir)) return []
  const out: string[] = []
  for (const e of await readdir(dir, {withFileTypes: true, recursive: true}))
    if (e.isFile()) out.push(join(e.parentPath, e.name))
  return out
}

async function requestsFor(server: NginxServer, path: string): Promise<string[]> {
  return (await server.accessLines()).filter((l) => l.includes(` ${path} `) || l.includes(` ${path}?`))
}

describe('pullFiles against nginx', () => {
  it('stores a good file at its mirrored path, then reuses it without a request', async () => {
    const ctx = await context()
    const url = `${web.url}/files/good.bin`
    const m = manifestOf([binary(url, sha(good))])
    const [r] = await pullFiles(m, ctx)
    expect(r).toMatchObject({
      kind: 'binary',
      url,
      path: `${web.host}/files/good.bin`,
      size: good.length,
      sha256: sha(good),
      reused: false,
    })
    expect(r.lock).toEqual({
      kind: 'binary',
      url,
      path: `${web.host}/files/good.bin`,
      size: good.length,
      sha256: sha(good),
    })
    expect(await readFile(join(ctx.store.files, web.host, 'files', 'good.bin'))).toEqual(good)
    const before = (await requestsFor(web, '/files/good.bin')).length
    const [again] = await pullFiles(m, ctx)
    expect(again).toMatchObject({reused: true, bytesFetched: 0, size: good.length})
    expect((await requestsFor(web, '/files/good.bin')).length).toBe(before)
  })

  it('refuses a wrong sha256: nothing under files/, expected and actual in the message', async () => {
    const ctx = await context()
    const wrong = sha(other)
    const err = await pullFiles(manifestOf([binary(`${web.url}/files/good.bin`, wrong)]), ctx).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toContain(`expected sha256:${wrong}`)
    expect((err as Error).message).toContain(`got sha256:${sha(good)}`)
    expect(await listFiles(ctx.store.files)).toEqual([])
  })

  it('takes the sha256 from a checksum file with one line, a bare hash, or many lines', async () => {
    const ctx = await context()
    const sums = `${web.url}/files/SHA256SUMS`
    const before = (await requestsFor(web, '/files/SHA256SUMS')).length
    const rs = await pullFiles(
      manifestOf(
        [
          binary(`${web.url}/files/good.bin`, undefined, `${web.url}/files/good.bin.sha256`),
          binary(`${web.url}/files/other.bin`, undefined, `${web.url}/files/bare.sha256`),
          binary(`${web.url}/files/big.bin`, undefined, sums),
        ],
        [{...binary(`${web.url}/files/other.bin`, undefined, sums), kind: 'package'}],
      ),
      ctx,
    )
    expect(rs.map((r) => r.sha256)).toEqual([sha(good), sha(other), sha(big), sha(other)])
    expect(await readFile(join(ctx.store.files, web.host, 'files', 'big.bin'))).toEqual(big)
    expect(await readFile(join(ctx.store.packages, web.host, 'files', 'other.bin'))).toEqual(other)
    // One checksum file naming several downloads is fetched once per run.
    expect((await requestsFor(web, '/files/SHA256SUMS')).length).toBe(before + 1)
  })

  it('names an unusable checksum file, and a checksum file without the name', async () => {
    const ctx = await context()
    const broken = `${web.url}/files/broken.sha256`
    // Prefixed with the entry's file:line:col, as a sha256 mismatch is.
    await expect(pullFiles(manifestOf([binary(`${web.url}/files/good.bin`, undefined, broken)]), ctx)).rejects.toThrow(
      `test.yaml:${pos.line}:${pos.column}: binary ${web.url}/files/good.bin: checksum file ${broken} has no sha256 line`,
    )
    // SHA256SUMS names other.bin, good.bin and big.bin, not f0.bin.
    await expect(
      pullFiles(manifestOf([binary(`${web.url}/many/f0.bin`, undefined, `${web.url}/files/SHA256SUMS`)]), ctx),
    ).rejects.toThrow(
      new RegExp(
        `^test\\.yaml:${pos.line}:${pos.column}: binary \\S+/many/f0\\.bin: checksum file .*SHA256SUMS has 3 lines and none names f0\\.bin`,
      ),
    )
    expect(await listFiles(ctx.store.files)).toEqual([])
  })

  it('reports a 404 with the host, the status and the URL', async () => {
    const ctx = await context()
    const url = `${web.url}/files/missing.bin`
    const err = await pullFiles(manifestOf([binary(url, sha(good))]), ctx).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NetworkError)
    expect((err as NetworkError).status).toBe(404)
    expect((err as Error).message).toContain(`${web.url}/files/missing.bin: HTTP 404`)
    expect((err as Error).message).toContain(url)
    // Not retried: one request.
    expect((await requestsFor(web, '/files/missing.bin')).length).toBe(1)
  })

  it('fetches and checks every URL on its own when two entries declare the same sha256', async () => {
    // A copy-paste slip: other.bin given good.bin's sha256. It must be fetched, and refused.
    const ctx = await context()
    const progress = new RecordingProgress()
    const slip = binary(`${web.url}/files/other.bin`, sha(good))
    const err = await pullFiles(manifestOf([binary(`${web.url}/files/good.bin`, sha(good)), slip]), {
      ...ctx,
      progress,
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toContain(`${web.url}/files/other.bin`)
    expect((err as Error).message).toContain(`got sha256:${sha(other)}`)
    expect((await requestsFor(web, '/files/other.bin')).length).toBeGreaterThan(0)
    expect(existsSync(join(ctx.store.files, web.host, 'files', 'other.bin'))).toBe(false)
    expect(await readFile(join(ctx.store.files, web.host, 'files', 'good.bin'))).toEqual(good)
    expect(progress.events.some((e) => e.startsWith(`done ${web.host}/files/good.bin`))).toBe(true)
    expect(progress.events.filter((e) => e.startsWith('fail '))).toEqual([
      expect.stringContaining(`fail ${web.host}/files/other.bin `),
    ])
  })

  it('reports a failing URL under its own entry, while another URL with the same sha256 succeeds', async () => {
    const ctx = await context()
    const progress = new RecordingProgress()
    const missing = `${web.url}/files/missing.bin`
    // The failing entry first, so that it is the one a shared download would start with.
    const err = await pullFiles(manifestOf([binary(missing, sha(good)), binary(`${web.url}/dl/good.bin`, sha(good))]), {
      ...ctx,
      progress,
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(NetworkError)
    expect((err as Error).message).toContain(missing)
    expect((err as NetworkError).details.join('\n')).not.toContain('good.bin')
    expect(await readFile(join(ctx.store.files, web.host, 'dl', 'good.bin'))).toEqual(good)
    expect(progress.events.filter((e) => e.startsWith('fail '))).toEqual([
      expect.stringMatching(new RegExp(`^fail ${web.host}/files/missing.bin .*HTTP 404`)),
    ])
    expect(progress.events.some((e) => e.startsWith(`done ${web.host}/dl/good.bin`))).toBe(true)
  })

  it('follows a redirect chain and stores the file at the path of the URL asked for', async () => {
    const ctx = await context()
    const url = `${web.url}/dl/good.bin`
    const [r] = await pullFiles(manifestOf([binary(url, sha(good))]), ctx)
    expect(r.path).toBe(`${web.host}/dl/good.bin`)
    expect(await readFile(join(ctx.store.files, web.host, 'dl', 'good.bin'))).toEqual(good)
    const log = await web.accessLines()
    expect(log.some((l) => l.includes('/hop/good.bin') && / 302 /.test(l))).toBe(true)
  })

  it('retries a server error and then succeeds', async () => {
    // nginx serves the file; the fault proxy in front answers 503 to the first two requests for it.
    const proxy = await startFaultProxy(web.url, {failEvery: 1, times: 2, match: /good\.bin$/})
    try {
      const ctx = await context()
      const [r] = await pullFiles(manifestOf([binary(`${proxy.url}/files/good.bin`, sha(good))]), ctx)
      expect(r.size).toBe(good.length)
      expect(await readFile(join(ctx.store.files, proxy.host, 'files', 'good.bin'))).toEqual(good)
      expect(proxy.log).toEqual([
        'GET /files/good.bin -> 503 fault',
        'GET /files/good.bin -> 503 fault',
        'GET /files/good.bin -> 200',
      ])
    } finally {
      await proxy.stop()
    }
  })

  it('resumes a download cut half-way, fetching fewer bytes the second time', async () => {
    const url = `${slow.url}/files/big.bin`
    const ac = new AbortController()
    let seen = 0
    const cutter: Progress = {
      ...silentProgress,
      task: (): TaskHandle => ({
        advance: (n) => {
          seen += n
          if (seen >= big.length / 2) ac.abort()
        },
        setTotal() {},
        done() {},
        fail() {},
      }),
    }
    const ctx = await context({progress: cutter, signal: ac.signal})
    const m = manifestOf([binary(url, sha(big))])
    await expect(pullFiles(m, ctx)).rejects.toThrow()
    expect(existsSync(join(ctx.store.files, slow.host, 'files', 'big.bin'))).toBe(false)
    const partial = ctx.store.partialPath(`sha256:${sha(big)}`, 'file', url)
    const kept = (await stat(partial)).size
    expect(kept).toBeGreaterThan(0)
    expect(kept).toBeLessThan(big.length)

    const [r] = await pullFiles(m, {...ctx, progress: silentProgress, signal: undefined})
    expect(r.reused).toBe(false)
    expect(r.bytesFetched).toBe(big.length - kept)
    expect(await readFile(join(ctx.store.files, slow.host, 'files', 'big.bin'))).toEqual(big)
    expect((await requestsFor(slow, '/files/big.bin')).some((l) => / 206 /.test(l))).toBe(true)
  })

  it('resumes with Range within the run when the server cuts the connection half-way', async () => {
    const proxy = await startFaultProxy(web.url, {cutAfterBytes: big.length / 2, times: 1, match: /big\.bin$/})
    try {
      const ctx = await context()
      const [r] = await pullFiles(manifestOf([binary(`${proxy.url}/files/big.bin`, sha(big))]), ctx)
      expect(await readFile(join(ctx.store.files, proxy.host, 'files', 'big.bin'))).toEqual(big)
      expect(proxy.log).toEqual(['GET /files/big.bin -> 200 fault', 'GET /files/big.bin -> 206'])
      // The second request asked for the rest only.
      const ranged = (await requestsFor(web, '/files/big.bin')).filter((l) => / 206 /.test(l))
      // What reached the disk before the cut (at most the half the proxy sent) is kept.
      const from = Number(/"bytes=(\d+)-"/.exec(ranged.at(-1) ?? '')?.[1])
      expect(from).toBeGreaterThan(0)
      expect(from).toBeLessThanOrEqual(big.length / 2)
      // Received: the half the proxy let through, then the rest from where the file stopped.
      expect(r.bytesFetched).toBeLessThanOrEqual(big.length / 2 + (big.length - from))
    } finally {
      await proxy.stop()
    }
  })

  it('names the file, the host and the attempts when resets outlast the retries', async () => {
    const proxy = await startFaultProxy(web.url, {cutAfterBytes: 40_000, match: /big\.bin$/})
    try {
      const ctx = await context()
      const url = `${proxy.url}/files/big.bin`
      const err = await pullFiles(manifestOf([binary(url, sha(big))]), ctx).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(NetworkError)
      const message = (err as Error).message
      expect(message).toContain(`binary ${url}`)
      expect(message).toContain(`from ${new URL(proxy.url).host}`)
      expect(message).toMatch(/gave up after 5 attempts, each resuming with Range/)
    } finally {
      await proxy.stop()
    }
  })

  it('names the file and the host when the server sends fewer bytes than its Content-Length', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, {'content-length': big.length})
      res.end(big.subarray(0, 1000))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    try {
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`
      const url = `http://${host}/short.bin`
      const ctx = await context()
      const err = await pullFiles(manifestOf([binary(url, sha(big))]), ctx).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(NetworkError)
      expect((err as Error).message).toContain(`binary ${url} from ${host}`)
      expect((err as Error).message).toMatch(/gave up after \d+ attempt/)
    } finally {
      server.closeAllConnections()
      await new Promise((r) => server.close(r))
    }
  })

  it('abandons a transfer that trickles under the speed floor and resumes it with Range', async () => {
    // A real server started here (a small node http server): the first request sends half the
    // file, then one byte every 400 ms; a Range request is answered at full speed.
    const ranges: string[] = []
    const sockets = new Set<import('node:net').Socket>()
    const server = createServer((req, res) => {
      const range = req.headers.range
      ranges.push(range ?? 'none')
      if (range) {
        const start = Number(/bytes=(\d+)-/.exec(range)![1])
        res.writeHead(206, {
          'content-length': big.length - start,
          'content-range': `bytes ${start}-${big.length - 1}/${big.length}`,
        })
        res.end(big.subarray(start))
        return
      }
      res.writeHead(200, {'content-length': big.length})
      res.write(big.subarray(0, big.length / 2))
      let at = big.length / 2
      const t = setInterval(() => {
        if (res.destroyed || at >= big.length) return clearInterval(t)
        res.write(big.subarray(at, ++at))
      }, 400)
      res.on('close', () => clearInterval(t))
    })
    server.on('connection', (s) => {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/big.bin`
      const ctx = {...(await context()), lowSpeed: {bytesPerSecond: 10_000, seconds: 2}}
      const started = Date.now()
      const [r] = await pullFiles(manifestOf([binary(url, sha(big))]), ctx)
      expect(r.size).toBe(big.length)
      expect(Date.now() - started).toBeLessThan(20_000)
      expect(ranges[0]).toBe('none')
      expect(ranges[1]).toMatch(/^bytes=\d+-$/)
      expect(Number(/bytes=(\d+)-/.exec(ranges[1])![1])).toBeGreaterThanOrEqual(big.length / 2)
      expect(await readFile(join(ctx.store.files, mirroredPath(url)))).toEqual(big)
    } finally {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    }
  })

  it('pulls many files in parallel through the shared pool, never more at once than its width', async () => {
    const ctx = await context({concurrency: 4})
    let active = 0
    let peak = 0
    const pool = ctx.pool
    const counting = ((fn: () => Promise<unknown>) =>
      pool(async () => {
        active++
        peak = Math.max(peak, active)
        try {
          return await fn()
        } finally {
          active--
        }
      })) as unknown as PullContext['pool']
    const rs = await pullFiles(manifestOf(many.map((b, i) => binary(`${slow.url}/many/f${i}.bin`, sha(b)))), {
      ...ctx,
      pool: counting,
    })
    expect(rs).toHaveLength(many.length)
    expect(peak).toBe(4)
    for (const [i, b] of many.entries())
      expect(await readFile(join(ctx.store.files, slow.host, 'many', `f${i}.bin`))).toEqual(b)
  })
})

describe('a file whose server declares more than it sends (issue 26)', () => {
  // 5,000,000 bytes; the stand-in server below declares 100 more in Content-Length on every
  // answer and ignores Range. A stand-in, as nginx cannot be made to lie about a length.
  const data = randomBytes(5_000_000)
  const liarSha = sha(data)
  let liar: import('node:http').Server
  let liarUrl = ''
  const asked: string[] = []
  beforeAll(async () => {
    liar = createServer((req, res) => {
      asked.push(req.headers.range ?? 'none')
      res.writeHead(200, {'content-length': data.length + 100})
      // All the bytes, then the connection closed (after they are sent) short of the declared length.
      res.end(data, () => res.socket?.end())
    })
    await new Promise<void>((r) => liar.listen(0, '127.0.0.1', r))
    liarUrl = `http://127.0.0.1:${(liar.address() as AddressInfo).port}/dl/liar.bin`
    await put('files/five.bin', data)
  })
  afterAll(async () => {
    liar?.closeAllConnections()
    await new Promise((r) => liar?.close(r))
  })

  it('finishes from the kept bytes once they hash to the sha256: one GET, 5,000,000 bytes fetched once', async () => {
    asked.length = 0
    const ctx = await context()
    const [r] = await pullFiles(manifestOf([binary(liarUrl, liarSha)]), ctx)
    expect(r.bytesFetched).toBe(data.length)
    expect(asked).toEqual(['none'])
    expect(await readFile(join(ctx.store.files, mirroredPath(liarUrl)))).toEqual(data)
  })

  it('a re-run whose .tmp/ holds the complete, correct bytes makes no request', async () => {
    asked.length = 0
    const ctx = await context()
    // What a first run that failed against this server left (the build before this fix did).
    const partial = ctx.store.partialPath(`sha256:${liarSha}`, 'file', liarUrl)
    await writeFile(partial, data)
    const [r] = await pullFiles(manifestOf([binary(liarUrl, liarSha)]), ctx)
    expect(r.bytesFetched).toBe(0)
    expect(asked).toEqual([])
    expect(await readFile(join(ctx.store.files, mirroredPath(liarUrl)))).toEqual(data)
    expect(existsSync(partial)).toBe(false)
  })

  it('checks what was kept on a 416 from nginx, cutting a tail past the length nginx names', async () => {
    const url = `${web.url}/files/five.bin`
    const ctx = await context()
    const partial = ctx.store.partialPath(`sha256:${liarSha}`, 'file', url)
    // The whole file and a torn tail after it: the Range asks past the end, nginx answers 416 bytes */5000000.
    await writeFile(partial, Buffer.concat([data, randomBytes(1000)]))
    const [r] = await pullFiles(manifestOf([binary(url, liarSha)]), ctx)
    expect(r.bytesFetched).toBe(0)
    expect(await readFile(join(ctx.store.files, mirroredPath(url)))).toEqual(data)
    const lines = await requestsFor(web, '/files/five.bin')
    expect(lines.filter((l) => / 416 /.test(l))).toHaveLength(1)
    expect(lines.filter((l) => / 200 /.test(l))).toHaveLength(0)
  })
})

describe('Helm charts from a repository served by nginx', () => {
  it('reads index.yaml once, downloads relative and absolute chart URLs and writes a merged charts/index.yaml', async () => {
    const ctx = await context()
    const repo = `${web.url}/repo`
    const before = (await requestsFor(web, '/repo/index.yaml')).length
    const rs = await pullFiles(manifestOf([], [chart(repo, 'alpha', '1.1.0'), chart(repo, 'beta', '0.3.0')]), ctx)
    expect((await requestsFor(web, '/repo/index.yaml')).length).toBe(before + 1)
    expect(rs.map((r) => [r.kind, r.path, r.url, r.sha256])).toEqual([
      ['chart', 'charts/alpha-1.1.0.tgz', `${repo}/charts/alpha-1.1.0.tgz`, sha(chartA2)],
      ['chart', 'charts/beta-0.3.0.tgz', `${web.url}/cdn/beta-0.3.0.tgz`, sha(chartB)],
    ])
    const charts = join(ctx.store.packages, 'charts')
    expect(await readFile(join(charts, 'alpha-1.1.0.tgz'))).toEqual(chartA2)
    expect(await readFile(join(charts, 'beta-0.3.0.tgz'))).toEqual(chartB)

    // A later pull of another chart keeps the first ones in the index.
    await pullFiles(manifestOf([], [chart(repo, 'alpha', '1.0.0')]), ctx)
    type Idx = {
      apiVersion: string
      entries: Record<
        string,
        {name: string; version: string; digest: string; urls: string[]; created: string; appVersion?: string}[]
      >
      generated: string
    }
    const idx = parse(await readFile(join(charts, 'index.yaml'), 'utf8')) as Idx
    expect(idx.apiVersion).toBe('v1')
    expect(typeof idx.generated).toBe('string')
    expect(idx.entries.alpha.map((e) => [e.version, e.digest, e.urls])).toEqual([
      ['1.1.0', sha(chartA2), ['alpha-1.1.0.tgz']],
      ['1.0.0', sha(chartA1), ['alpha-1.0.0.tgz']],
    ])
    expect(idx.entries.alpha[0].appVersion).toBe('2.0')
    expect(idx.entries.beta.map((e) => [e.version, e.digest, e.urls])).toEqual([
      ['0.3.0', sha(chartB), ['beta-0.3.0.tgz']],
    ])
    for (const e of Object.values(idx.entries).flat()) expect(Number.isNaN(Date.parse(e.created))).toBe(false)
  })

  it('lists the available versions when the version is missing', async () => {
    const ctx = await context()
    const err = await pullFiles(manifestOf([], [chart(`${web.url}/repo`, 'alpha', '7.0.0')]), ctx).catch(
      (e: unknown) => e,
    )
    expect((err as Error).message).toBe(`chart alpha has no version 7.0.0 in the repository ${web.url}/repo`)
    expect((err as {details: string[]}).details).toEqual(['available versions: 1.1.0, 1.0.0, 0.9.0'])
  })

  it('refuses a chart whose digest does not match the index', async () => {
    const ctx = await context()
    const err = await pullFiles(manifestOf([], [chart(`${web.url}/repo`, 'alpha', '0.9.0')]), ctx).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toContain(`expected sha256:${sha(chartA1)}`)
    expect((err as Error).message).toContain(`got sha256:${sha(chartA2)}`)
    expect(await listFiles(join(ctx.store.packages, 'charts'))).toEqual([
      join(ctx.store.packages, 'charts', 'index.yaml'),
    ])
  })
})

describe('airlock pull (CLI) with binaries, packages and a chart', () => {
  it('pulls them, prints them with --json, and exits 1 naming expected and actual on a wrong sha256', async () => {
    const dir = await makeTempDir('airlock-pull-files-cli-')
    const store = join(dir, 'store')
    const manifest = join(dir, 'manifest.yaml')
    await writeFile(
      manifest,
      stringify({
        apiVersion: 'airlock/v1',
        kind: 'Manifest',
        metadata: {name: 'files-test'},
        spec: {
          binaries: [
            {url: `${web.url}/files/good.bin`, sha256: sha(good)},
            {url: `${web.url}/files/big.bin`, checksumUrl: `${web.url}/files/SHA256SUMS`, path: 'tools/big.bin'},
          ],
          packages: [
            {url: `${web.url}/files/other.bin`, sha256: sha(other)},
            {chart: {repo: `${web.url}/repo`, name: 'alpha', version: '1.1.0'}},
          ],
        },
      }),
    )
    const r = await runCli(['pull', manifest, '--store', store, '--json'])
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as {
      counts: {files: number}
      items: {kind: string; url: string; path: string; size: number; sha256: string; reused: boolean}[]
    }
    expect(out.counts.files).toBe(4)
    expect(out.items.map((f) => [f.kind, f.path, f.size, f.sha256, f.reused])).toEqual([
      ['binary', `${web.host}/files/good.bin`, good.length, sha(good), false],
      ['binary', 'tools/big.bin', big.length, sha(big), false],
      ['package', `${web.host}/files/other.bin`, other.length, sha(other), false],
      ['chart', 'charts/alpha-1.1.0.tgz', chartA2.length, sha(chartA2), false],
    ])
    expect(await readFile(join(store, 'files', 'tools', 'big.bin'))).toEqual(big)
    expect(await readFile(join(store, 'packages', web.host, 'files', 'other.bin'))).toEqual(other)
    expect(existsSync(join(store, 'packages', 'charts', 'index.yaml'))).toBe(true)

    const again = await runCli(['pull', manifest, '--store', store, '--json'])
    expect(again.code).toBe(0)
    expect((JSON.parse(again.stdout) as typeof out).items.every((f) => f.reused)).toBe(true)

    // The human result: aligned columns, one row per item, and a total line.
    const human = await runCli(['pull', manifest, '--store', store])
    expect(human.code).toBe(0)
    const lines = human.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^KIND +NAME +DIGEST +PLATFORMS +SIZE +FETCHED$/)
    expect(lines).toHaveLength(6)
    for (const row of lines.slice(1, 5)) {
      expect(row.indexOf(' sha256:')).toBe(lines[0].indexOf(' DIGEST'))
      expect(row.endsWith('in the store')).toBe(true)
    }
    expect(lines[5]).toMatch(/^total: 4 items \(0 images, 4 files\), .* in .*; fetched 0 B, 4 already in the store$/)

    const badStore = join(dir, 'bad-store')
    const bad = join(dir, 'bad.yaml')
    await writeFile(
      bad,
      stringify({
        apiVersion: 'airlock/v1',
        kind: 'Manifest',
        metadata: {name: 'bad'},
        spec: {binaries: [{url: `${web.url}/files/good.bin`, sha256: sha(other)}]},
      }),
    )
    const failed = await runCli(['pull', bad, '--store', badStore])
    expect(failed.code).toBe(1)
    // The manifest's file and line come first, as validate names a problem.
    const line = (await readFile(bad, 'utf8')).split('\n').findIndex((l) => l.includes('good.bin')) + 1
    expect(failed.stderr).toMatch(
      new RegExp(`Error: ${bad}:${line}:\\d+: binary ${web.url}/files/good\\.bin: digest mismatch`),
    )
    expect(failed.stderr).toContain(`expected sha256:${sha(other)}`)
    expect(failed.stderr).toContain(`got sha256:${sha(good)}`)
    expect(await listFiles(join(badStore, 'files'))).toEqual([])
  })
})
