import {Readable} from 'node:stream'
import {gzipSync} from 'node:zlib'

import {describe, expect, it} from 'vitest'

import {
  archiveBatches,
  type BundleEntry,
  checkEntryPath,
  maxTarBytes,
} from '../../../src/lib/bundle/format/archive-entries.js'
import type {BundleLock} from '../../../src/lib/bundle-json.js'
import {IntegrityError} from '../../../src/lib/errors.js'
import {fileData, type FixtureFile, hostileArchives, lockEntry, tarBytes} from '../../helpers/bundle-fixture.js'

function lockOf(files: FixtureFile[]): BundleLock {
  return {apiVersion: 'airlock/v1', name: 't', images: [], files: files.map(lockEntry)}
}

/** The entries of archiveBatches one at a time, as a sink takes them. */
async function* entries(tgz: Buffer, lock: BundleLock): AsyncGenerator<BundleEntry> {
  for await (const batch of archiveBatches(Readable.from([tgz]), lock, 'files')) yield* batch
}

/** Consume every entry like a sink would: read each body to the end. */
async function drain(tgz: Buffer, lock: BundleLock) {
  const got: {path: string; bytes: number; executable: boolean}[] = []
  for await (const e of entries(tgz, lock)) {
    let bytes = 0
    for await (const c of e.body) bytes += c.length
    got.push({path: e.path, bytes, executable: e.executable})
  }
  return got
}

describe('checkEntryPath', () => {
  it('strips the top folder and refuses what could escape it', () => {
    expect(checkEntryPath('offline-files/h/a/b', 'offline-files')).toBe('h/a/b')
    expect(checkEntryPath('./offline-files/h/', 'offline-files')).toBe('h')
    expect(checkEntryPath('offline-files/', 'offline-files')).toBe('')
    expect(() => checkEntryPath('/etc/passwd', 'offline-files')).toThrow(/absolute/)
    expect(() => checkEntryPath('offline-files/../x', 'offline-files')).toThrow(/\.\./)
    expect(() => checkEntryPath('offline-files//x', 'offline-files')).toThrow(/empty/)
    expect(() => checkEntryPath('other/x', 'offline-files')).toThrow(/top folder/)
    expect(() => checkEntryPath('offline-files/a\0b', 'offline-files')).toThrow(/NUL/)
    expect(() => checkEntryPath(`offline-files/${'a/'.repeat(3000)}`, 'offline-files')).toThrow(/characters/)
    expect(() => checkEntryPath(`offline-files/${'a'.repeat(300)}`, 'offline-files')).toThrow(/segment/)
  })
})

describe('archiveBatches', () => {
  const files: FixtureFile[] = [
    {path: 'dl.example/v1/kubeadm', data: fileData(200_000), executable: true},
    {path: 'dl.example/v1/README', data: Buffer.from('hi\n')},
  ]
  const good = () =>
    gzipSync(
      tarBytes([
        {name: 'offline-files/', type: '5', mode: 0o755},
        {name: 'offline-files/dl.example/', type: '5', mode: 0o755},
        {name: `offline-files/${files[0].path}`, data: files[0].data, mode: 0o755},
        {name: `offline-files/${files[1].path}`, data: files[1].data},
      ]),
    )

  it('yields each listed file, verified, with its exec bit', async () => {
    expect(await drain(good(), lockOf(files))).toEqual([
      {path: files[0].path, bytes: 200_000, executable: true},
      {path: files[1].path, bytes: 3, executable: false},
    ])
  })

  it('hands small files whole and checked, in batches, and streams a big one as the last of its batch', async () => {
    const mixed: FixtureFile[] = [
      {path: 'h/a', data: Buffer.from('aaa\n')},
      {path: 'h/b', data: fileData(200_000)},
      {path: 'h/big', data: fileData(300_000)},
      {path: 'h/d', data: Buffer.from('')},
    ]
    const tgz = gzipSync(tarBytes(mixed.map((f) => ({name: `offline-files/${f.path}`, data: f.data}))))
    const batches: {path: string; whole: boolean; bytes: number}[][] = []
    for await (const batch of archiveBatches(Readable.from([tgz]), lockOf(mixed), 'files')) {
      const got = []
      for (const e of batch) {
        let bytes = 0
        for await (const c of e.body) bytes += c.length
        if (e.bytes) expect(e.bytes.equals(mixed.find((f) => f.path === e.path)!.data)).toBe(true)
        got.push({path: e.path, whole: e.bytes !== undefined, bytes})
      }
      batches.push(got)
    }
    expect(batches).toEqual([
      [
        {path: 'h/a', whole: true, bytes: 4},
        {path: 'h/b', whole: true, bytes: 200_000},
        {path: 'h/big', whole: false, bytes: 300_000},
      ],
      [{path: 'h/d', whole: true, bytes: 0}],
    ])
  })

  it('checks a small file before its batch is handed out', async () => {
    const listed: FixtureFile[] = [
      {path: 'h/a', data: Buffer.from('good\n')},
      {path: 'h/b', data: Buffer.from('good too\n')},
    ]
    const tgz = gzipSync(
      tarBytes([
        {name: 'offline-files/h/a', data: listed[0].data},
        {name: 'offline-files/h/b', data: Buffer.from('EVIL too\n')},
      ]),
    )
    const seen: string[] = []
    const err = await (async () => {
      for await (const batch of archiveBatches(Readable.from([tgz]), lockOf(listed), 'files'))
        seen.push(...batch.map((e) => e.path))
    })().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toMatch(/offline-files\.tar\.gz: h\/b/)
    expect(seen).toEqual([])
  })

  it('lets a sink leave a body unread', async () => {
    const seen: string[] = []
    for await (const e of entries(good(), lockOf(files))) seen.push(e.path)
    expect(seen).toEqual(files.map((f) => f.path))
  })

  it('fails when a listed file is not in the archive', async () => {
    const more = [...files, {path: 'dl.example/v1/gone', data: Buffer.from('x')}]
    await expect(drain(good(), lockOf(more))).rejects.toThrow(/not in the archive/)
  })

  it.each(hostileArchives().map((h) => [h.name, h] as const))('refuses a hostile archive: %s', async (_name, h) => {
    const err = await drain(h.tgz(), lockOf(h.listed)).then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(Error)
    expect((err as {kind?: string}).kind).toMatch(/bundle|integrity/)
    expect((err as Error).message).toMatch(h.why)
  })

  it('bounds the decompressed bytes by what bundle.json lists', () => {
    const lock = lockOf(files)
    const cap = maxTarBytes(lock.files, 'offline-files')
    expect(cap).toBeGreaterThan(200_000 + 512 * 6)
    expect(cap).toBeLessThan(400_000)
  })
})
