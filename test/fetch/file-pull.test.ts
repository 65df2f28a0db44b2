import {createHash, randomBytes} from 'node:crypto'
import {mkdir, readFile, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {IntegrityError} from '../../src/lib/errors.js'
import {FileFetcher, localOpener} from '../../src/lib/fetch/file-pull.js'
import {createHttp} from '../../src/lib/fetch/http.js'
import {Once} from '../../src/lib/once.js'
import {Store} from '../../src/lib/store/store.js'

// The reuse and dedup rules, with a local source so that no server is needed;
// the HTTP paths are covered against nginx in test/e2e/pull-files.test.ts.
const root = join(tmpdir(), `airlock-file-pull-${process.pid}`)
const store = new Store(join(root, 'store'))
const src = join(root, 'src.bin')
const data = randomBytes(100_000)
const digest = `sha256:${createHash('sha256').update(data).digest('hex')}`
let opens = 0

async function fetcher(): Promise<FileFetcher> {
  return new FileFetcher({http: await createHttp(), once: new Once()})
}

function req(dest: string, d = digest) {
  const open = localOpener(src)
  return {
    url: 'http://unused.invalid/src.bin',
    open: (offset: number) => {
      opens++
      return open(offset)
    },
    digest: d,
    dest,
    partial: store.partialPath(d, 'file'),
    label: 'binary src.bin',
  }
}

beforeAll(async () => {
  await mkdir(root, {recursive: true})
  await writeFile(src, data)
  await store.init()
})
afterAll(() => rm(root, {recursive: true, force: true}))

describe('FileFetcher', () => {
  it('downloads, then reuses the file while it hashes right, and fetches it again once changed', async () => {
    const dest = join(store.files, 'h', 'a.bin')
    opens = 0
    const first = await (await fetcher()).fetch(req(dest))
    expect(first).toEqual({size: data.length, reused: false, bytesFetched: data.length})
    expect(opens).toBe(1)
    const second = await (await fetcher()).fetch(req(dest))
    expect(second).toEqual({size: data.length, reused: true, bytesFetched: 0})
    expect(opens).toBe(1)
    // Same size, one byte changed: never trusted.
    const changed = Buffer.from(data)
    changed[500] ^= 0xff
    await writeFile(dest, changed)
    const third = await (await fetcher()).fetch(req(dest))
    expect(third.reused).toBe(false)
    expect(opens).toBe(2)
    expect(await readFile(dest)).toEqual(data)
  })

  it('fetches content shared by three paths once and copies it to the others', async () => {
    const f = await fetcher()
    opens = 0
    const a = join(store.packages, 'x', 'one.bin')
    const b = join(store.packages, 'y', 'two.bin')
    const c = join(store.packages, 'z', 'three.bin')
    const [ra, rb, rc] = await Promise.all([f.fetch(req(a)), f.fetch(req(b)), f.fetch(req(c))])
    expect(opens).toBe(1)
    // Which of the three downloads depends on which store check ends first; exactly one does.
    expect([ra.reused, rb.reused, rc.reused].sort()).toEqual([false, true, true])
    expect(await readFile(b)).toEqual(data)
    expect(await readFile(c)).toEqual(data)
  })

  it('refuses content with another digest and leaves nothing at the destination', async () => {
    const dest = join(store.files, 'h', 'wrong.bin')
    const wrong = `sha256:${'0'.repeat(64)}`
    const err = await (await fetcher()).fetch(req(dest, wrong)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as IntegrityError).expected).toBe(wrong)
    expect((err as IntegrityError).actual).toBe(digest)
    await expect(readFile(dest)).rejects.toThrow(/ENOENT/)
  })
})

describe('HashCache', () => {
  it('answers for an unchanged file only, and never for one changed since', async () => {
    const {HashCache, statFile} = await import('../../src/lib/fetch/hash-cache.js')
    const path = join(root, 'cached.bin')
    await writeFile(path, 'abc')
    const cache = new HashCache(join(root, 'hashes.json'))
    const st = (await statFile(path))!
    // Too young to trust: not recorded.
    cache.remember(path, st, 'sha256:young', st.ctimeMs + 100)
    expect(cache.lookup(path, st)).toBeUndefined()
    cache.remember(path, st, 'sha256:old', st.ctimeMs + 10_000)
    await cache.save()
    const loaded = new HashCache(join(root, 'hashes.json'))
    await loaded.load()
    expect(loaded.lookup(path, st)).toBe('sha256:old')
    await writeFile(path, 'abd')
    expect(loaded.lookup(path, (await statFile(path))!)).toBeUndefined()
  })
})
