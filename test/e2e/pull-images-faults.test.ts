import {spawn} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {mirroredPath} from '../../src/lib/manifest/mirror-path.js'
import {Store} from '../../src/lib/store/store.js'
import {repoRoot, runCli} from '../helpers/cli.js'
import {type PushedImage, pushImage} from '../helpers/images.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {startFaultProxy} from '../helpers/proxy.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

let reg: RegistryServer
let img: PushedImage

beforeAll(async () => {
  reg = await startRegistry()
  img = await pushImage(reg, {repository: 'fault/app', tag: '1', layers: 1, layerSize: 3 * 1024 * 1024})
})

afterAll(async () => reg?.stop())

function sha256(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

async function manifestFile(dir: string, host: string): Promise<string> {
  const file = join(dir, 'airlock.yaml')
  await writeFile(
    file,
    `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: faults\nspec:\n  images:\n    - ${host}/${img.repository}:${img.tag}\n`,
  )
  return file
}

async function blobsAllVerified(store: string): Promise<string[]> {
  const dir = join(store, 'images/blobs/sha256')
  const names = existsSync(dir) ? await readdir(dir) : []
  for (const f of names) expect(sha256(await readFile(join(dir, f)))).toBe(`sha256:${f}`)
  return names
}

const layer = () => img.blobs.reduce((a, b) => (b.size > a.size ? b : a))

describe('airlock pull under faults', () => {
  it('never lets a byte flipped in transit land in the store', async () => {
    const proxy = await startFaultProxy(reg.url, {flipByteAt: 100_000, match: /\/blobs\//})
    try {
      const dir = await makeTempDir('airlock-flip-')
      const store = join(dir, 'store')
      const r = await runCli(['pull', await manifestFile(dir, proxy.host), '--store', store])
      // Every response through the proxy is corrupted: the download is retried once, then fails.
      expect(r.code).toBe(1)
      const big = layer()
      expect(r.stderr).toContain(
        `blob ${big.digest} of ${proxy.host}/${img.repository}:${img.tag}: digest mismatch: expected ${big.digest}, got sha256:`,
      )
      const names = await blobsAllVerified(store)
      expect(names).not.toContain(big.digest.slice(7))
      // Nothing names the image either.
      const index = JSON.parse(await readFile(join(store, 'images/index.json'), 'utf8')) as {manifests: unknown[]}
      expect(index.manifests).toHaveLength(0)
      // The download routine's one retry after a mismatch, then the error: two corrupted answers for the layer.
      expect(proxy.log.filter((l) => l.includes(big.digest) && l.endsWith('fault'))).toHaveLength(2)
    } finally {
      await proxy.stop()
    }
  })

  it('resumes a broken transfer with Range in the same run', async () => {
    const big = layer()
    const proxy = await startFaultProxy(reg.url, {
      cutAfterBytes: 1_000_000,
      match: new RegExp(`/blobs/${big.digest}`),
      times: 1,
    })
    try {
      const dir = await makeTempDir('airlock-cut-')
      const store = join(dir, 'store')
      const r = await runCli(['pull', await manifestFile(dir, proxy.host), '--store', store, '--json'])
      expect(r.code, r.stderr).toBe(0)
      const res = JSON.parse(r.stdout) as {items: {bytesFetched: number}[]}
      // The cut part was not fetched twice.
      const configSize = img.blobs.filter((b) => b !== big).reduce((n, b) => n + b.size, 0)
      expect(res.items[0].bytesFetched).toBeLessThan(big.size + configSize + 200_000)
      expect(await blobsAllVerified(store)).toContain(big.digest.slice(7))
      // The second request for the layer asked for the rest only.
      expect(proxy.log.filter((l) => l.includes(big.digest))).toEqual([
        expect.stringMatching(/-> 200 fault$/),
        expect.stringMatching(/-> 206$/),
      ])
    } finally {
      await proxy.stop()
    }
  })

  it('retries 503 answers and succeeds', async () => {
    const proxy = await startFaultProxy(reg.url, {failEvery: 2, spareRetries: true, match: /\/(blobs|manifests)\//})
    try {
      const dir = await makeTempDir('airlock-503-')
      const store = join(dir, 'store')
      const r = await runCli(['pull', await manifestFile(dir, proxy.host), '--store', store])
      expect(r.code, r.stderr).toBe(0)
      expect(proxy.faults).toBeGreaterThan(0)
      expect(await blobsAllVerified(store)).toHaveLength(img.blobs.length + 1)
    } finally {
      await proxy.stop()
    }
  })

  describe('killed half-way', () => {
    let nginx: NginxServer
    beforeAll(async () => {
      nginx = await startNginx({proxyTo: reg.url, rateLimit: '512k'})
    })
    afterAll(async () => nginx?.stop())

    it('continues the partial file with Range on the next run, fetching fewer bytes', async () => {
      const big = layer()
      const dir = await makeTempDir('airlock-kill-')
      const store = join(dir, 'store')
      const file = await manifestFile(dir, nginx.host)
      const partial = new Store(store).partialPath(big.digest, 'blob')
      const child = spawn(process.execPath, [join(repoRoot, 'bin/run.js'), 'pull', file, '--store', store, '--quiet'], {
        stdio: 'ignore',
      })
      const exited = new Promise((r) => child.once('exit', r))
      let have = 0
      for (let i = 0; i < 600 && have < big.size / 3; i++) {
        await sleep(50)
        have = existsSync(partial) ? (await stat(partial)).size : 0
      }
      child.kill('SIGKILL')
      await exited
      have = (await stat(partial)).size
      expect(have).toBeGreaterThan(0)
      expect(have).toBeLessThan(big.size)
      expect(existsSync(join(store, 'images/blobs/sha256', big.digest.slice(7)))).toBe(false)

      // The dead process's lock is taken over; the partial file is continued.
      const r = await runCli(['pull', file, '--store', store, '--json'])
      expect(r.code, r.stderr).toBe(0)
      const res = JSON.parse(r.stdout) as {items: {bytesFetched: number; bytesReused: number}[]}
      expect(res.items[0].bytesFetched).toBeLessThan(big.size - have / 2)
      expect(res.items[0].bytesReused).toBeGreaterThanOrEqual(have)
      const ranged = (await nginx.accessLines()).filter((l) => l.includes(`/blobs/${big.digest}`) && /" 206 /.test(l))
      expect(ranged.length).toBeGreaterThan(0)
      expect(await blobsAllVerified(store)).toContain(big.digest.slice(7))
      expect(existsSync(partial)).toBe(false)
    })

    it("killed at many moments, a re-run fetches no more than .tmp/ did not hold as a valid prefix, and the store ends as an uninterrupted pull's", async () => {
      const big = layer()
      // Its own throttled servers, faster than the test above's, so that many kills fit in minutes: the
      // 3 MiB layer through a proxy at 1 MB/s, and a file from a root at 1 MB/s (a file's size is learned
      // from its server), the two in flight side by side for about 2.5 s.
      const proxy = await startNginx({proxyTo: reg.url, rateLimit: '1m'})
      const web = await startNginx({rateLimit: '1m'})
      try {
        const data = randomBytes(2_500_000)
        await writeFile(join(web.root, 'tool.bin'), data)
        const fileUrl = `${web.url}/tool.bin`
        const fileSha = createHash('sha256').update(data).digest('hex')
        const manifest = async (dir: string) => {
          const file = join(dir, 'airlock.yaml')
          await writeFile(
            file,
            `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: faults\nspec:\n  images:\n    - ${proxy.host}/${img.repository}:${img.tag}\n  binaries:\n    - url: ${fileUrl}\n      sha256: ${fileSha}\n`,
          )
          return file
        }
        // The manifest is asked again on every run, to resolve the tag.
        const total = img.blobs.reduce((n, b) => n + b.size, 0) + data.length + img.manifestBytes.length
        const pull = (file: string, store: string) =>
          spawn(process.execPath, [join(repoRoot, 'bin/run.js'), 'pull', file, '--store', store, '--quiet'], {
            stdio: 'ignore',
          })

        // An uninterrupted pull, spawned as the killed ones are: the store to end with, and how long a pull lasts.
        const refDir = await makeTempDir('airlock-kill-ref-')
        const began = Date.now()
        const refChild = pull(await manifest(refDir), join(refDir, 'store'))
        expect(await new Promise((r) => refChild.once('exit', r))).toBe(0)
        const pullMs = Date.now() - began
        const expected = await storeTree(join(refDir, 'store'))

        // Moments: when a partial file reaches a share of its content (1 = whole, not yet renamed), and
        // times drawn over the whole pull (process start to exit) from seeded generators, so that a
        // failure names its seed, and the same seed kills at the same shares of a pull again.
        const moments: ({file: 'blob' | 'file'; share: number} | {seed: number; ms: number})[] = [
          {file: 'file', share: 1},
          {file: 'blob', share: 1},
          {file: 'file', share: 0.5},
          {file: 'blob', share: 0.3},
        ]
        for (const seed of [7, 31, 1009, 65537]) {
          const random = seeded(seed)
          for (let i = 0; i < 3; i++) moments.push({seed, ms: Math.round(random() * pullMs)})
        }
        // Where each kill left the two large contents, for the failure message and the log below.
        const states: string[] = []
        for (const moment of moments) {
          const dir = await makeTempDir('airlock-kill-many-')
          const store = join(dir, 'store')
          const file = await manifest(dir)
          const partials = {
            blob: new Store(store).partialPath(big.digest, 'blob'),
            file: new Store(store).partialPath(`sha256:${fileSha}`, 'file', fileUrl),
          }
          const child = pull(file, store)
          const exited = new Promise((r) => child.once('exit', r))
          let ended = false
          void exited.then(() => (ended = true))
          if ('ms' in moment) await sleep(moment.ms)
          else {
            const want = (moment.file === 'blob' ? big.size : data.length) * moment.share
            while (
              !ended &&
              !(
                existsSync(partials[moment.file]) &&
                (await stat(partials[moment.file]).catch(() => ({size: 0}))).size >= want
              )
            )
              await sleep(1)
          }
          child.kill('SIGKILL')
          await exited

          // What .tmp/ holds that is a valid prefix of its content, and what is in the store already.
          let held = 0
          const contents = [
            {
              name: 'blob',
              final: join(store, 'images/blobs/sha256', big.digest.slice(7)),
              partial: partials.blob,
              bytes: big.data,
              size: big.size,
            },
            {
              name: 'file',
              final: join(store, 'files', mirroredPath(fileUrl)),
              partial: partials.file,
              bytes: data,
              size: data.length,
            },
          ]
          const state: string[] = []
          for (const c of contents) {
            if (existsSync(c.final)) {
              held += c.size
              state.push(`${c.name} stored`)
            } else if (existsSync(c.partial)) {
              const kept = await readFile(c.partial)
              const valid = validPrefix(kept, c.bytes)
              held += valid
              state.push(`${c.name} .tmp ${kept.length}/${c.size}${valid < kept.length ? ` (${valid} valid)` : ''}`)
            } else state.push(`${c.name} none`)
          }
          const small = img.blobs.filter((b) => b !== big)
          for (const b of small) if (existsSync(join(store, 'images/blobs/sha256', b.digest.slice(7)))) held += b.size
          const where = `${JSON.stringify(moment)}: ${state.join(', ')}`
          states.push(where)

          const again = await runCli(['pull', file, '--store', store, '--json'])
          expect(again.code, again.stderr).toBe(0)
          const fetched = (JSON.parse(again.stdout) as {counts: {bytesFetched: number}}).counts.bytesFetched
          // Soft: the kills go on, so that a failure lists every moment that broke.
          expect.soft(fetched, where).toBeLessThanOrEqual(total - held)
          expect.soft(await storeTree(store), where).toEqual(expected)
        }
        console.log(`a pull lasted ${pullMs} ms; killed:\n${states.join('\n')}`)
      } finally {
        await web.stop()
        await proxy.stop()
      }
    }, 900_000)
  })
})

/** A seeded pseudo-random generator (mulberry32): numbers in [0, 1), the same for the same seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}

/** How many leading bytes of `kept` are those of `whole`. */
function validPrefix(kept: Buffer, whole: Buffer): number {
  const n = Math.min(kept.length, whole.length)
  let i = 0
  while (i < n && kept[i] === whole[i]) i++
  return i
}

/** Every file of a store but its bookkeeping (.tmp/, the lock, records), with its sha256. */
async function storeTree(store: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {}
  for (const e of await readdir(store, {recursive: true, withFileTypes: true})) {
    if (!e.isFile()) continue
    const rel = join(e.parentPath, e.name).slice(store.length + 1)
    if (rel.startsWith('.')) continue
    out[rel] = sha256(await readFile(join(store, rel)))
  }
  return out
}
