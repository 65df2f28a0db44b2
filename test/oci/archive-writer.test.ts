import {createWriteStream} from 'node:fs'
import {readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {pipeline} from 'node:stream/promises'

import {describe, expect, it} from 'vitest'

import {IntegrityError} from '../../src/lib/errors.js'
import {ArchiveImageSource, OciArchive} from '../../src/lib/oci/archive.js'
import {OciArchiveWriter} from '../../src/lib/oci/archive-writer.js'
import {OciLayoutSource} from '../../src/lib/oci/layout.js'
import {makeStoreFixture, type StoreFixture} from '../helpers/store-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

// The oci-archive writer fed every digest of a layout on disk (as a bundle's
// plan feeds it), read back with the archive reader: every image whole, the
// order fixed, what the target holds left out, and a blob or manifest that
// changed after it was noted refused.

async function noteAll(holds: (store: StoreFixture) => Set<string> = () => new Set(), given?: StoreFixture) {
  const store =
    given ??
    (await makeStoreFixture({
      images: [
        {ref: 'quay.io/b/multi:1', platforms: ['linux/amd64', 'linux/arm64'], layers: 2, layerSize: 3000},
        {ref: 'docker.io/library/a:1', format: 'docker', layers: 1, layerSize: 2000},
      ],
      files: [],
    }))
  const blobPath = (d: string) => join(store.root, 'images', 'blobs', 'sha256', d.slice(7))
  const writer = new OciArchiveWriter({
    mtime: 0,
    holds: holds(store),
    source: new OciLayoutSource(join(store.root, 'images')),
  })
  for (const d of store.blobs)
    writer.note({mediaType: 'application/octet-stream', digest: d, size: (await stat(blobPath(d))).size}, `blob ${d}`)
  for (const img of store.images)
    writer.tag(img.ref, {mediaType: img.mediaType, digest: img.digest, size: (await stat(blobPath(img.digest))).size})
  return {store, writer}
}

async function write(writer: OciArchiveWriter): Promise<string> {
  const file = join(await makeTempDir('airlock-archive-writer-'), 'images.tar')
  await pipeline(writer.stream(), createWriteStream(file))
  return file
}

describe('OciArchiveWriter', () => {
  it('writes an oci-archive the reader takes back: images by name, blobs by digest, each blob once', async () => {
    const {store, writer} = await noteAll()
    const archive = await OciArchive.open([await write(writer)])
    try {
      const names = [...archive.entries.keys()]
      expect(names.slice(0, 2)).toEqual(['oci-layout', 'index.json'])
      expect(names.slice(2)).toEqual(store.blobs.map((d) => `blobs/sha256/${d.slice(7)}`))
      const index = await archive.readIndex()
      expect(index.manifests.map((m) => m.annotations?.['org.opencontainers.image.ref.name'])).toEqual([
        'docker.io/library/a:1',
        'quay.io/b/multi:1',
      ])
      // The Docker manifest is listed under its OCI twin type, as in the store.
      expect(index.manifests[0].mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
      const back = new ArchiveImageSource(archive)
      for (const d of store.blobs)
        expect((await back.fetchManifest({mediaType: '', digest: d, size: 0})).length).toBeGreaterThan(0)
    } finally {
      await archive.close()
    }
  })

  it('leaves out what the target holds, and still names the image', async () => {
    const {store, writer} = await noteAll((s) => new Set([s.images[0].digest]))
    const archive = await OciArchive.open([await write(writer)])
    try {
      expect(archive.hasBlob(store.images[0].digest)).toBe(false)
      expect(archive.hasBlob(store.images[1].digest)).toBe(true)
      expect((await archive.readIndex()).manifests).toHaveLength(2)
    } finally {
      await archive.close()
    }
  })

  // A layer with its last byte flipped; a manifest with one bit of its JSON flipped (still the same size).
  it.each([
    ['blob', (store: StoreFixture) => store.images[0].blobs[1], 1, 0xff],
    ['manifest', (store: StoreFixture) => store.images[1].digest, 2, 0x01],
  ] as const)(
    'a %s that changed after it was noted stops the archive with an IntegrityError naming it',
    async (_what, pick, fromEnd, flip) => {
      const {store, writer} = await noteAll()
      const digest = pick(store)
      const path = join(store.root, 'images', 'blobs', 'sha256', digest.slice(7))
      const data = await readFile(path)
      data[data.length - fromEnd] ^= flip
      await writeFile(path, data)
      const err = await write(writer).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(IntegrityError)
      expect((err as Error).message).toContain(digest)
    },
  )

  it('writes the same bytes for the same content, whatever the order digests and tags were noted in', async () => {
    const first = await noteAll()
    const kept = await readFile(await write(first.writer))
    const store = first.store
    const blobPath = (d: string) => join(store.root, 'images', 'blobs', 'sha256', d.slice(7))
    const again = new OciArchiveWriter({mtime: 0, source: new OciLayoutSource(join(store.root, 'images'))})
    for (const img of [...store.images].reverse())
      again.tag(img.ref, {mediaType: img.mediaType, digest: img.digest, size: (await stat(blobPath(img.digest))).size})
    for (const d of [...store.blobs].reverse())
      again.note({mediaType: 'application/octet-stream', digest: d, size: (await stat(blobPath(d))).size}, `blob ${d}`)
    expect((await readFile(await write(again))).equals(kept)).toBe(true)
    // What the target holds stays out, of the size as of the archive.
    const held = store.images[0].blobs[0]
    const partial = new OciArchiveWriter({
      mtime: 0,
      source: new OciLayoutSource(join(store.root, 'images')),
      holds: new Set([held]),
    })
    partial.note(
      {mediaType: 'application/octet-stream', digest: held, size: (await stat(blobPath(held))).size},
      `blob ${held}`,
    )
    expect(partial.size).toBe(
      new OciArchiveWriter({mtime: 0, source: new OciLayoutSource(join(store.root, 'images'))}).size,
    )
  })
})
