import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {setTimeout as sleep} from 'node:timers/promises'

import {describe, expect, it} from 'vitest'

import {Bundle, openBundle} from '../../src/lib/bundle/format/open-bundle.js'
import type {BundleLock} from '../../src/lib/bundle-json.js'
import type {FilePutOptions, FileRef} from '../../src/lib/content/roles.js'
import type {OpenableFileSink} from '../../src/lib/content/roles.js'
import {BundleError} from '../../src/lib/errors.js'
import {importFiles} from '../../src/lib/importers/file-import.js'
import {silentProgress} from '../../src/lib/ui/progress.js'
import {fileData, type FixtureFile, makeBundle} from '../helpers/bundle-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

/**
 * The loop's side of the FileSink contract, against a sink that keeps
 * files in memory and writes down every call (the real sinks, a web root
 * and a bucket, are tested through import nginx and import s3).
 */
class MemorySink implements OpenableFileSink {
  readonly name = 'memory'
  readonly events: string[] = []
  readonly held = new Map<string, string>()
  private readonly pending = new Set<Promise<void>>()

  constructor(private readonly hooks: {put?: (f: FileRef) => Promise<void>; has?: (f: FileRef) => boolean} = {}) {}

  where(path: string): string {
    return `p/${path}`
  }

  async has(f: FileRef): Promise<boolean> {
    return this.hooks.has?.(f) ?? false
  }

  async open(): Promise<void> {
    this.events.push('open')
  }

  async put(f: FileRef, body: AsyncIterable<Buffer>, opts: FilePutOptions): Promise<void> {
    this.events.push(`put ${f.path}`)
    try {
      for await (const c of body) opts.onBytes(c.length)
      await this.hooks.put?.(f)
    } finally {
      this.events.push(`end ${f.path}`)
    }
    // What was done is told later, as a background upload would.
    const p = sleep(5).then(() => opts.onStored('written'))
    this.pending.add(p)
  }

  async commit(): Promise<void> {
    await Promise.all(this.pending)
    this.events.push('commit')
  }

  async abort(): Promise<void> {
    await Promise.all(this.pending)
    this.events.push('abort')
  }
}

/** A sink that also takes small checked files whole, at once, as a web root's does while its write thread has room. */
class WholeSink extends MemorySink {
  putWhole(f: FileRef, bytes: Buffer, opts: FilePutOptions): undefined {
    this.events.push(`whole ${f.path} ${bytes.length}`)
    this.held.set(f.path, bytes.toString('hex'))
    opts.onBytes(bytes.length)
    opts.onStored('written')
    return undefined
  }
}

const FILES: FixtureFile[] = [
  {path: 'dl.example/a/kubeadm', data: fileData(300_000), executable: true},
  {path: 'dl.example/a/kubelet', data: fileData(100_000)},
  {path: 'example.com/tools/both', data: fileData(50_000)},
  {path: 'example.com/tools/both', data: Buffer.alloc(0), kind: 'package'},
  {path: 'charts/x-1.0.0.tgz', data: fileData(20_000), kind: 'chart'},
]
FILES[3].data = FILES[2].data

async function bundle(files = FILES): Promise<{dir: string; lock: BundleLock}> {
  const b = await makeBundle(join(await makeTempDir('file-import-'), 'bundle'), files)
  return {dir: b.dir, lock: b.lock as BundleLock}
}

describe('importFiles', () => {
  it('puts each file once (a path both archives carry, as the binary) and lists them in bundle.json order under the sink names', async () => {
    const {dir} = await bundle()
    const sink = new MemorySink()
    const r = await importFiles(await openBundle(dir), sink, {progress: silentProgress})
    expect(sink.events.filter((e) => e.startsWith('put ')).sort()).toEqual(
      [
        'put charts/x-1.0.0.tgz',
        'put dl.example/a/kubeadm',
        'put dl.example/a/kubelet',
        'put example.com/tools/both',
      ].sort(),
    )
    expect(r.files.map((f) => f.path)).toEqual([
      'p/dl.example/a/kubeadm',
      'p/dl.example/a/kubelet',
      'p/example.com/tools/both',
      'p/charts/x-1.0.0.tgz',
    ])
    expect(r).toMatchObject({written: 4, skipped: 0, bytesWritten: 470_000})
    expect(sink.events[0]).toBe('open')
    expect(sink.events.at(-1)).toBe('commit')
  })

  it('hands a sink with putWhole each small file whole, and streams only the big one through put', async () => {
    const {dir} = await bundle()
    const sink = new WholeSink()
    const r = await importFiles(await openBundle(dir), sink, {progress: silentProgress})
    expect(sink.events.filter((e) => /^(put|whole) /.test(e)).sort()).toEqual(
      [
        'put dl.example/a/kubeadm',
        'whole charts/x-1.0.0.tgz 20000',
        'whole dl.example/a/kubelet 100000',
        'whole example.com/tools/both 50000',
      ].sort(),
    )
    expect(sink.held.get('dl.example/a/kubelet')).toBe(FILES[1].data.toString('hex'))
    expect(r).toMatchObject({written: 4, skipped: 0, bytesWritten: 470_000})
  })

  it('runs the full check only when its own read found a problem, and reports that check: nothing committed', async () => {
    const {dir} = await bundle()
    let verifying = 0
    const clean = new MemorySink()
    await importFiles(await openBundle(dir), clean, {progress: silentProgress, verify: async () => void verifying++})
    expect(verifying).toBe(0)
    expect(clean.events.at(-1)).toBe('commit')

    // Every entry still right, but SHA256SUMS does not match the archive's bytes.
    const sums = join(dir, 'SHA256SUMS')
    await writeFile(
      sums,
      (await readFile(sums, 'utf8')).replace(/^[0-9a-f]{64}(?=  offline-files\.tar\.gz$)/m, '0'.repeat(64)),
    )
    const refusal = new BundleError('the bundle failed verification')
    const sink = new MemorySink()
    const err = await importFiles(await openBundle(dir), sink, {
      progress: silentProgress,
      verify: () => sleep(50).then(() => Promise.reject(refusal)),
    }).catch((e: unknown) => e)
    expect(err).toBe(refusal)
    expect(sink.events).not.toContain('commit')
    expect(sink.events.at(-1)).toBe('abort')

    // Without a full check to run (the caller verified before), the read's own finding is the error.
    const unchecked = new MemorySink()
    const own = await importFiles(await openBundle(dir), unchecked, {progress: silentProgress}).catch((e: unknown) => e)
    expect(own).toMatchObject({
      exitCode: 2,
      details: [
        expect.stringMatching(/^offline-files\.tar\.gz: sha256 [0-9a-f]{64} does not match SHA256SUMS \(0{64}\)$/),
      ],
    })
    expect(unchecked.events).not.toContain('commit')
  })

  it('stops the other archive on a failure, and aborts only once both archives ended', async () => {
    const {dir} = await bundle()
    const broken = new Error('disk full')
    const sink = new MemorySink({
      put: async (f) => {
        // The package is still being written when the binary fails.
        if (f.path === 'charts/x-1.0.0.tgz') await sleep(300)
        if (f.path === 'dl.example/a/kubeadm') await sleep(50).then(() => Promise.reject(broken))
      },
    })
    // A bundle the full check finds sound: the sink's own failure is the error.
    const err = await importFiles(await openBundle(dir), sink, {
      progress: silentProgress,
      verify: async () => {},
    }).catch((e: unknown) => e)
    expect(err).toBe(broken)
    expect(sink.events).not.toContain('put dl.example/a/kubelet')
    // The package's put, started before the failure, ended before the sink was aborted.
    expect(sink.events).toContain('put charts/x-1.0.0.tgz')
    expect(sink.events.slice(-2)).toEqual(['end charts/x-1.0.0.tgz', 'abort'])
  })

  it('refuses a delta whose left-out files the sink lacks, before the sink is opened or verification starts', async () => {
    const {dir, lock} = await bundle(FILES.slice(0, 2))
    const left = {
      kind: 'binary' as const,
      url: 'https://dl.example/a/kubectl',
      path: 'dl.example/a/kubectl',
      size: 7,
      sha256: 'a'.repeat(64),
      fromBase: true as const,
    }
    const delta: BundleLock = {...lock, files: [...lock.files, left], base: [{name: 'v1', lockSha256: 'b'.repeat(64)}]}
    let verifying = false
    const sink = new MemorySink()
    const err = await importFiles(new Bundle(dir, delta, (await openBundle(dir)).lockSha256), sink, {
      progress: silentProgress,
      verify: async () => void (verifying = true),
    }).catch((e: unknown) => e)
    expect(err).toMatchObject({
      exitCode: 1,
      message: expect.stringMatching(/^memory lacks 1 item/),
      details: [expect.stringMatching(/^p\/dl\.example\/a\/kubectl \(sha256 a{64}\)/)],
    })
    expect(sink.events).toEqual([])
    expect(verifying).toBe(false)

    const held = new MemorySink({has: (f) => f.path === left.path})
    const r = await importFiles(new Bundle(dir, delta, (await openBundle(dir)).lockSha256), held, {
      progress: silentProgress,
    })
    expect(r.files.map((f) => f.path)).toEqual(['p/dl.example/a/kubeadm', 'p/dl.example/a/kubelet'])
  })
})
