import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {readdir, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import pLimit from 'p-limit'
import {describe, expect, it} from 'vitest'

import type {Descriptor} from '../src/lib/content/descriptor.js'
import {sha256Digest} from '../src/lib/content/digest.js'
import {MediaType} from '../src/lib/content/media-types.js'
import type {BlobPutResult, ImageSink} from '../src/lib/content/roles.js'
import {BlobQueue, Copier} from '../src/lib/copy.js'
import {FailureError, IntegrityError} from '../src/lib/errors.js'
import {OciLayoutSink, OciLayoutSource, readLayoutIndex} from '../src/lib/oci/layout.js'
import {Store} from '../src/lib/store/store.js'
import {MemoryImages} from './helpers/memory-images.js'
import {makeTempDir} from './helpers/tmp.js'

function image(src: MemoryImages, platform: {os: string; architecture: string}, layers: Buffer[]) {
  const config = src.add(
    Buffer.from(JSON.stringify({...platform, rootfs: {type: 'layers', diff_ids: []}, r: Math.random()})),
    MediaType.ociConfig,
  )
  const layerDescs = layers.map((l) => src.add(l, 'application/vnd.oci.image.layer.v1.tar+gzip'))
  const m = Buffer.from(
    JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers: layerDescs}),
  )
  return {desc: {...src.add(m, MediaType.ociManifest), platform}, bytes: m}
}

function index(src: MemoryImages, manifests: Descriptor[]) {
  const bytes = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociIndex, manifests}))
  return {bytes, mediaType: MediaType.ociIndex, digest: src.add(bytes, MediaType.ociIndex).digest}
}

async function layoutStore() {
  const store = new Store(await makeTempDir('airlock-copy-'))
  await store.init()
  return store
}

/** Records the order of sink writes around a real layout. */
function recording(sink: ImageSink, log: string[]): ImageSink {
  return {
    hasBlob: (d) => sink.hasBlob(d),
    putBlob: async (d, open, o) => {
      const r = await sink.putBlob(d, open, o)
      log.push(`blob ${d.digest}`)
      return r
    },
    putManifest: async (d, b) => {
      await sink.putManifest(d, b)
      log.push(`manifest ${d.digest}`)
    },
    tag: async (ref, d, b) => {
      await sink.tag(ref, d, b)
      log.push(`tag ${ref}`)
    },
  }
}

describe('Copier into an OCI layout', () => {
  it('copies an index: blobs before their manifest, manifests before the index, the tag last; each shared blob once', async () => {
    const src = new MemoryImages()
    const base = randomBytes(5000)
    const amd = image(src, {os: 'linux', architecture: 'amd64'}, [base, randomBytes(3000)])
    const arm = image(src, {os: 'linux', architecture: 'arm64'}, [base, randomBytes(4000)])
    const root = index(src, [amd.desc, arm.desc])
    const single = image(src, {os: 'linux', architecture: 'amd64'}, [base])
    const store = await layoutStore()
    const log: string[] = []
    const sink = recording(new OciLayoutSink(store), log)
    const copier = new Copier({sink, pool: pLimit(4), concurrency: 4})
    let planned = 0
    let advanced = 0
    const [r1, r2] = await Promise.all([
      copier.copyImage({
        source: src,
        root,
        refs: ['reg/multi:1'],
        label: 'reg/multi:1',
        onPlan: (p) => (planned = p.totalBytes),
        onBytes: (n) => (advanced += n),
      }),
      copier.copyImage({
        source: src,
        root: {bytes: single.bytes, mediaType: MediaType.ociManifest, digest: single.desc.digest},
        refs: ['reg/single:1'],
        label: 'reg/single:1',
      }),
    ])
    expect(src.blobOpens.filter((d) => d === sha256Digest(base))).toHaveLength(1)
    expect(new Set(src.blobOpens).size).toBe(src.blobOpens.length)
    expect(advanced).toBe(planned)
    // Unique manifests + configs + layers.
    const blobSizes = r1.blobs.reduce((n, b) => n + b.size, 0)
    expect(r1.size).toBe(root.bytes.length + amd.bytes.length + arm.bytes.length + blobSizes)
    expect(r1.bytesFetched + r1.bytesReused).toBe(blobSizes)
    expect(r2.bytesFetched + r2.bytesReused).toBe(5000 + JSON.parse(single.bytes.toString()).config.size)

    for (const m of [amd, arm]) {
      const own = JSON.parse(m.bytes.toString()) as {config: Descriptor; layers: Descriptor[]}
      const at = log.indexOf(`manifest ${m.desc.digest}`)
      for (const b of [own.config, ...own.layers]) {
        // The store starts empty, so every blob is put once (the shared base perhaps for the other image), always before this manifest.
        expect(log.filter((l) => l === `blob ${b.digest}`)).toHaveLength(1)
        expect(log.indexOf(`blob ${b.digest}`)).toBeLessThan(at)
      }
      expect(at).toBeLessThan(log.indexOf(`manifest ${root.digest}`))
    }
    expect(log.indexOf(`manifest ${root.digest}`)).toBeLessThan(log.indexOf('tag reg/multi:1'))

    const idx = await readLayoutIndex(store.images)
    expect(idx.manifests.map((m) => m.annotations)).toEqual([
      {'org.opencontainers.image.ref.name': 'reg/multi:1', 'io.containerd.image.name': 'reg/multi:1'},
      {'org.opencontainers.image.ref.name': 'reg/single:1', 'io.containerd.image.name': 'reg/single:1'},
    ])
    expect(await readFile(store.blobPath(root.digest))).toEqual(root.bytes)

    // Again into the same layout: nothing is read from the source.
    const before = src.blobOpens.length
    const again = await new Copier({sink: new OciLayoutSink(store), pool: pLimit(4), concurrency: 4}).copyImage({
      source: src,
      root,
      refs: ['reg/multi:1'],
      label: 'x',
    })
    expect(src.blobOpens.length).toBe(before)
    expect(again.bytesFetched).toBe(0)
    expect((await readLayoutIndex(store.images)).manifests).toHaveLength(2)

    // The layout reads back as a source.
    const back = new OciLayoutSource(store.images)
    expect((await back.resolve('reg/multi:1'))?.digest).toBe(root.digest)
    expect(await back.fetchManifest(amd.desc)).toEqual(amd.bytes)
  })

  it('tells the sink a manifest or tag is fresh when something under it was just written, and not when all was there', async () => {
    const src = new MemoryImages()
    const amd = image(src, {os: 'linux', architecture: 'amd64'}, [randomBytes(3000)])
    const arm = image(src, {os: 'linux', architecture: 'arm64'}, [randomBytes(4000)])
    const root = index(src, [amd.desc, arm.desc])
    const store = await layoutStore()
    const hints: string[] = []
    const hinting = (sink: ImageSink): ImageSink => ({
      hasBlob: (d) => sink.hasBlob(d),
      putBlob: (d, open, o) => sink.putBlob(d, open, o),
      putManifest: async (d, b, o) => {
        hints.push(`manifest ${d.digest === root.digest ? 'root' : 'child'} ${o?.fresh === true}`)
        await sink.putManifest(d, b, o)
      },
      tag: async (ref, d, b, o) => {
        hints.push(`tag ${o?.fresh === true}`)
        await sink.tag(ref, d, b, o)
      },
    })
    const copy = () =>
      new Copier({sink: hinting(new OciLayoutSink(store)), pool: pLimit(4), concurrency: 4}).copyImage({
        source: src,
        root,
        refs: ['reg/multi:1'],
        label: 'x',
      })
    await copy()
    expect(hints.sort()).toEqual(['manifest child true', 'manifest child true', 'manifest root true', 'tag true'])
    hints.length = 0
    // Everything is there now: no hint, so a sink checks before it writes.
    await copy()
    expect(hints.sort()).toEqual(['manifest child false', 'manifest child false', 'manifest root false', 'tag false'])
  })

  it('leaves foreign layers with urls where they are and copies foreign-typed layers without urls', async () => {
    const src = new MemoryImages()
    const config = src.add(Buffer.from(JSON.stringify({os: 'windows', architecture: 'amd64'})), MediaType.ociConfig)
    const foreignType = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'
    // Referenced by URL only: the source does not have it, so a copy attempt would fail.
    const remote = {
      mediaType: foreignType,
      digest: sha256Digest(randomBytes(100)),
      size: 100,
      urls: ['https://mcr.example/base'],
    }
    const local = src.add(randomBytes(300), foreignType)
    const bytes = Buffer.from(
      JSON.stringify({schemaVersion: 2, mediaType: MediaType.dockerManifest, config, layers: [remote, local]}),
    )
    const root = {bytes, mediaType: MediaType.dockerManifest, digest: src.add(bytes, MediaType.dockerManifest).digest}
    const store = await layoutStore()
    const r = await new Copier({sink: new OciLayoutSink(store), pool: pLimit(2), concurrency: 2}).copyImage({
      source: src,
      root,
      refs: ['r/win:1'],
      label: 'r/win:1',
    })
    expect(r.blobs.map((b) => b.digest).sort()).toEqual([config.digest, local.digest].sort())
    expect(src.blobOpens).not.toContain(remote.digest)
    expect(await readFile(store.blobPath(local.digest))).toEqual(src.content.get(local.digest))
    expect(existsSync(store.blobPath(remote.digest))).toBe(false)
  })

  it('never lets a corrupted blob into the layout', async () => {
    const src = new MemoryImages()
    const bad = randomBytes(2000)
    const img = image(src, {os: 'linux', architecture: 'amd64'}, [bad])
    src.corrupt = sha256Digest(bad)
    const store = await layoutStore()
    const copier = new Copier({
      sink: new OciLayoutSink(store, {policy: {attempts: 2, baseDelayMs: 1, maxDelayMs: 1}}),
      pool: pLimit(2),
      concurrency: 2,
    })
    const err = await copier
      .copyImage({
        source: src,
        root: {bytes: img.bytes, mediaType: MediaType.ociManifest, digest: img.desc.digest},
        refs: ['r'],
        label: 'reg/bad:1',
      })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as IntegrityError).message).toContain(`blob ${sha256Digest(bad)} of reg/bad:1`)
    expect(existsSync(store.blobPath(sha256Digest(bad)))).toBe(false)
    expect(existsSync(store.blobPath(img.desc.digest))).toBe(false)
    expect((await readLayoutIndex(store.images)).manifests).toHaveLength(0)
    // Tried twice (the download routine's one retry), then gave up.
    expect(src.blobOpens.filter((d) => d === sha256Digest(bad))).toHaveLength(2)
    const blobs = await readdir(join(store.images, 'blobs', 'sha256'))
    expect(blobs).not.toContain(sha256Digest(bad).slice(7))
  })

  it('starts large blobs first but keeps a quarter of the slots for small ones', async () => {
    const src = new MemoryImages()
    const large = Array.from({length: 6}, () => randomBytes(4096))
    const small = Array.from({length: 6}, () => randomBytes(100))
    const img = image(src, {os: 'linux', architecture: 'amd64'}, [...large, ...small])
    const starts: number[] = []
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let running = 0
    // A sink that holds every blob until released, to see what got a slot.
    const sink: ImageSink = {
      hasBlob: async () => false,
      putBlob: async (d: Descriptor): Promise<BlobPutResult> => {
        starts.push(d.size)
        running++
        if (running === 4) release()
        await gate
        return {bytesFetched: d.size, bytesResumed: 0}
      },
      putManifest: async () => {},
      tag: async () => {},
    }
    const copier = new Copier({sink, pool: pLimit(4), concurrency: 4})
    await copier.copyImage({
      source: src,
      root: {bytes: img.bytes, mediaType: MediaType.ociManifest, digest: img.desc.digest},
      refs: [],
      label: 's',
    })
    // Four slots: three large (largest first), one kept for the small ones.
    expect(starts.slice(0, 4).filter((s) => s >= 1000)).toHaveLength(3)
    expect(starts.slice(0, 4).filter((s) => s < 1000)).toHaveLength(1)
    expect(starts).toHaveLength(13)
  })

  it('Copiers sharing a queue start the largest blob waiting first, whichever Copier queued it', async () => {
    const src = new MemoryImages()
    const smallImg = image(src, {os: 'linux', architecture: 'amd64'}, [randomBytes(100), randomBytes(120)])
    const largeImg = image(src, {os: 'linux', architecture: 'arm64'}, [randomBytes(8192)])
    const starts: number[] = []
    let checked = 0
    const sink: ImageSink = {
      hasBlob: async () => {
        checked++
        return false
      },
      putBlob: async (d: Descriptor): Promise<BlobPutResult> => {
        starts.push(d.size)
        return {bytesFetched: d.size, bytesResumed: 0}
      },
      putManifest: async () => {},
      tag: async () => {},
    }
    // One slot, held until every blob of both images is queued: then the order is the queue's alone.
    const pool = pLimit(1)
    let open!: () => void
    const held = pool(() => new Promise<void>((r) => (open = r)))
    const queue = new BlobQueue(pool, 1)
    const copy = (img: ReturnType<typeof image>) =>
      new Copier({sink, pool, queue, concurrency: 1}).copyImage({
        source: src,
        root: {bytes: img.bytes, mediaType: MediaType.ociManifest, digest: img.desc.digest},
        refs: [],
        label: 'q',
      })
    const done = Promise.all([copy(smallImg), copy(largeImg)])
    while (checked < 5) await new Promise((r) => setImmediate(r))
    await new Promise((r) => setImmediate(r))
    open()
    await held
    await done
    expect(starts[0]).toBe(8192)
    expect(starts).toHaveLength(5)
  })

  it('names a child manifest that is not JSON, and the image it belongs to', async () => {
    const src = new MemoryImages()
    const bad = src.add(Buffer.from('<html>'), MediaType.ociManifest)
    const index = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: [bad]}))
    const sink: ImageSink = {
      hasBlob: async () => false,
      putBlob: async () => ({bytesFetched: 0, bytesResumed: 0}),
      putManifest: async () => {},
      tag: async () => {},
    }
    const copier = new Copier({sink, pool: pLimit(2), concurrency: 2})
    const err = await copier
      .copyImage({
        source: src,
        root: {bytes: index, mediaType: MediaType.ociIndex, digest: sha256Digest(index)},
        refs: [],
        label: 'reg/a:1',
      })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FailureError)
    expect((err as Error).message).toBe(`manifest ${bad.digest} of reg/a:1 is not valid JSON`)
  })
})
