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
import {pushImage, type PushedImage} from '../helpers/images.js'
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
  await writeFile(file, `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: faults\nspec:\n  images:\n    - ${host}/${img.repository}:${img.tag}\n`)
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
      expect(r.stderr).toContain(`blob ${big.digest} of ${proxy.host}/${img.repository}:${img.tag}: digest mismatch: expected ${big.digest}, got sha256:`)
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
    const proxy = await startFaultProxy(reg.url, {cutAfterBytes: 1_000_000, match: new RegExp(`/blobs/${big.digest}`), times: 1})
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
      expect(proxy.log.filter((l) => l.includes(big.digest))).toEqual([expect.stringMatching(/-> 200 fault$/), expect.stringMatching(/-> 206$/)])
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
      const child = spawn(process.execPath, [join(repoRoot, 'bin/run.js'), 'pull', file, '--store', store, '--quiet'], {stdio: 'ignore'})
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

    it('killed at many moments, a re-run fetches no more than .tmp/ did not hold as a valid prefix, and the store ends as an uninterrupted pull\'s', async () => {
      const big = layer()
      // A file beside the image, from a throttled nginx root: a file's size is learned from its server.
      const web = await startNginx({rateLimit: '2m'})
      try {
        const data = randomBytes(2_500_000)
        await writeFile(join(web.root, 'tool.bin'), data)
        const fileUrl = `${web.url}/tool.bin`
        const fileSha = createHash('sha256').update(data).digest('hex')
        const manifest = async (dir: string) => {
          const file = join(dir, 'airlock.yaml')
          await writeFile(file, `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: faults\nspec:\n  images:\n    - ${nginx.host}/${img.repository}:${img.tag}\n  binaries:\n    - url: ${fileUrl}\n      sha256: ${fileSha}\n`)
          return file
        }
        // The manifest is asked again on every run, to resolve the tag.
        const total = img.blobs.reduce((n, b) => n + b.size, 0) + data.length + img.manifestBytes.length

        const refDir = await makeTempDir('airlock-kill-ref-')
        const ref = await runCli(['pull', await manifest(refDir), '--store', join(refDir, 'store'), '--json'])
        expect(ref.code, ref.stderr).toBe(0)
        const expected = await storeTree(join(refDir, 'store'))

        // Moments: when a partial file reaches a share of its content (1 = whole, not yet renamed),
        // and at times drawn from seeded generators.
        const moments: ({file: 'blob' | 'file'; share: number} | {ms: number})[] = [
          {file: 'file', share: 1},
          {file: 'blob', share: 1},
          {file: 'file', share: 0.5},
          {file: 'blob', share: 0.3},
        ]
        for (const seed of [7, 31]) {
          let x = seed
          for (let i = 0; i < 2; i++) {
            x = (x * 1103515245 + 12345) % 2 ** 31
            moments.push({ms: 300 + (x % 2500)})
          }
        }
        for (const moment of moments) {
          const dir = await makeTempDir('airlock-kill-many-')
          const store = join(dir, 'store')
          const file = await manifest(dir)
          const partials = {blob: new Store(store).partialPath(big.digest, 'blob'), file: new Store(store).partialPath(`sha256:${fileSha}`, 'file', fileUrl)}
          const child = spawn(process.execPath, [join(repoRoot, 'bin/run.js'), 'pull', file, '--store', store, '--quiet'], {stdio: 'ignore'})
          const exited = new Promise((r) => child.once('exit', r))
          let ended = false
          void exited.then(() => (ended = true))
          if ('ms' in moment) await sleep(moment.ms)
          else {
            const want = (moment.file === 'blob' ? big.size : data.length) * moment.share
            while (!ended && !(existsSync(partials[moment.file]) && (await stat(partials[moment.file]).catch(() => ({size: 0}))).size >= want)) await sleep(1)
          }
          child.kill('SIGKILL')
          await exited

          // What .tmp/ holds that is a valid prefix of its content, and what is in the store already.
          let held = 0
          const contents = [
            {final: join(store, 'images/blobs/sha256', big.digest.slice(7)), partial: partials.blob, bytes: big.data, size: big.size},
            {final: join(store, 'files', mirroredPath(fileUrl)), partial: partials.file, bytes: data, size: data.length},
          ]
          for (const c of contents) {
            if (existsSync(c.final)) held += c.size
            else if (existsSync(c.partial)) {
              held += validPrefix(await readFile(c.partial), c.bytes)
            }
          }
          const small = img.blobs.filter((b) => b !== big)
          for (const b of small) if (existsSync(join(store, 'images/blobs/sha256', b.digest.slice(7)))) held += b.size

          const again = await runCli(['pull', file, '--store', store, '--json'])
          expect(again.code, again.stderr).toBe(0)
          const fetched = (JSON.parse(again.stdout) as {counts: {bytesFetched: number}}).counts.bytesFetched
          expect(fetched, JSON.stringify(moment)).toBeLessThanOrEqual(total - held)
          expect(await storeTree(store), JSON.stringify(moment)).toEqual(expected)
        }
      } finally {
        await web.stop()
      }
    }, 900_000)
  })
})

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
