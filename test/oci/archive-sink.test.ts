import {createWriteStream} from 'node:fs'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'

import pLimit from 'p-limit'
import {describe, expect, it} from 'vitest'

import {Copier} from '../../src/lib/copy.js'
import {IntegrityError} from '../../src/lib/errors.js'
import {ArchiveImageSource, OciArchive} from '../../src/lib/oci/archive.js'
import {ArchiveImageSink} from '../../src/lib/oci/archive-sink.js'
import {OciLayoutSource} from '../../src/lib/oci/layout.js'
import {makeStoreFixture, type StoreFixture} from '../helpers/store-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

// The oci-archive sink driven by the Copier from a layout on disk, read back
// with the archive reader: every image whole, the order fixed, what the
// target holds left out, and a blob that changed after it was put refused.

async function copyAll(holds: (store: StoreFixture) => Set<string> = () => new Set(), opts: {reread?: boolean; store?: StoreFixture} = {}) {
  const store = opts.store ?? await makeStoreFixture({images: [
    {ref: 'quay.io/b/multi:1', platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 3000},
    {ref: 'docker.io/library/a:1', format: 'docker', layers: 1, layerSize: 2000},
  ], files: []})
  const source = new OciLayoutSource(join(store.root, 'images'))
  const sink = new ArchiveImageSink({mtime: 0, holds: holds(store), ...(opts.reread ? {source} : {})})
  const copier = new Copier({sink, pool: pLimit(4), concurrency: 4})
  for (const img of store.images) {
    const bytes = await source.fetchManifest({mediaType: img.mediaType, digest: img.digest, size: 0})
    await copier.copyImage({source, root: {bytes, mediaType: img.mediaType, digest: img.digest}, refs: [img.ref], label: img.ref})
  }
  return {store, sink}
}

async function write(sink: ArchiveImageSink): Promise<string> {
  const file = join(await makeTempDir('airlock-archive-sink-'), 'images.tar')
  await pipeline(sink.stream(), createWriteStream(file))
  return file
}

describe('ArchiveImageSink', () => {
  it('writes an oci-archive the reader takes back: images by name, blobs by digest, each blob once', async () => {
    const {store, sink} = await copyAll()
    const archive = await OciArchive.open([await write(sink)])
    try {
      const names = [...archive.entries.keys()]
      expect(names.slice(0, 2)).toEqual(['oci-layout', 'index.json'])
      expect(names.slice(2)).toEqual(store.blobs.map((d) => `blobs/sha256/${d.slice(7)}`))
      const index = await archive.readIndex()
      expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toEqual(['docker.io/library/a:1', 'quay.io/b/multi:1'])
      // The Docker manifest is listed under its OCI twin type, as in the store.
      expect(index.manifests[0].mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
      const back = new ArchiveImageSource(archive)
      for (const d of store.blobs) expect((await back.fetchManifest({mediaType: '', digest: d, size: 0})).length).toBeGreaterThan(0)
    } finally {
      await archive.close()
    }
  })

  it('leaves out what the target holds, and still names the image', async () => {
    const {store, sink} = await copyAll((s) => new Set([s.images[0].digest]))
    const archive = await OciArchive.open([await write(sink)])
    try {
      expect(archive.hasBlob(store.images[0].digest)).toBe(false)
      expect(archive.hasBlob(store.images[1].digest)).toBe(true)
      expect((await archive.readIndex()).manifests).toHaveLength(2)
    } finally {
      await archive.close()
    }
  })

  it('a blob that changed after it was put stops the archive with an IntegrityError naming it', async () => {
    const {store, sink} = await copyAll()
    const layer = store.images[0].blobs[1]
    const path = join(store.root, 'images', 'blobs', 'sha256', layer.slice(7))
    const data = await readFile(path)
    data[data.length - 1] ^= 0xff
    await writeFile(path, data)
    const err = await write(sink).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toContain(layer)
  })

  it('with a source to read from again, keeps no manifest bytes and writes the same archive', async () => {
    const first = await copyAll()
    const kept = await readFile(await write(first.sink))
    const {sink} = await copyAll(undefined, {reread: true, store: first.store})
    expect((sink as unknown as {blobs: Map<string, {bytes?: Buffer; open?: unknown}>}).blobs.size).toBeGreaterThan(0)
    for (const noted of (sink as unknown as {blobs: Map<string, {bytes?: Buffer; open?: unknown}>}).blobs.values()) {
      expect(noted.bytes).toBeUndefined()
      expect(noted.open).toBeUndefined()
    }
    expect((await readFile(await write(sink))).equals(kept)).toBe(true)
  })

  it('with a source, a manifest that changed there after it was put stops the archive with an IntegrityError naming it', async () => {
    const {store, sink} = await copyAll(undefined, {reread: true})
    const manifest = store.images[1].digest
    const path = join(store.root, 'images', 'blobs', 'sha256', manifest.slice(7))
    const data = await readFile(path)
    data[data.length - 2] ^= 0x01
    await writeFile(path, data)
    const err = await write(sink).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toContain(manifest)
  })

  it('noted digest by digest (no copy: what the plan of a bundle does), writes the very archive the copy writes; what the target holds stays out', async () => {
    const first = await copyAll()
    const kept = await readFile(await write(first.sink))
    const source = new OciLayoutSource(join(first.store.root, 'images'))
    const sizeOf = async (d: string) => (await readFile(join(first.store.root, 'images', 'blobs', 'sha256', d.slice(7)))).length
    const noted = new ArchiveImageSink({mtime: 0, source})
    for (const d of first.store.blobs) noted.note({mediaType: 'application/octet-stream', digest: d, size: await sizeOf(d)}, `blob ${d}`)
    for (const img of first.store.images) await noted.tag(img.ref, {mediaType: img.mediaType, digest: img.digest, size: await sizeOf(img.digest)})
    expect((await readFile(await write(noted))).equals(kept)).toBe(true)

    const held = first.store.images[0].blobs[0]
    const partial = new ArchiveImageSink({mtime: 0, source, holds: new Set([held])})
    partial.note({mediaType: 'application/octet-stream', digest: held, size: await sizeOf(held)}, `blob ${held}`)
    expect(partial.size).toBe(new ArchiveImageSink({mtime: 0, source}).size)
  })

  it('note() needs a source to read the digest from when the tar reaches it', () => {
    const sink = new ArchiveImageSink({mtime: 0})
    expect(() => sink.note({mediaType: 'application/octet-stream', digest: `sha256:${'a'.repeat(64)}`, size: 1}, 'x')).toThrow(/needs a source/)
  })
})
