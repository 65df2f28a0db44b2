import {readFile, rm, stat} from 'node:fs/promises'

import {describe, expect, it} from 'vitest'

import {sha256Digest} from '../../src/lib/content/digest.js'
import {MediaType} from '../../src/lib/content/media-types.js'
import {IntegrityError} from '../../src/lib/errors.js'
import {layoutEntryMediaType, OciLayoutSink, OciLayoutSource, readLayoutIndex} from '../../src/lib/oci/layout.js'
import {Store} from '../../src/lib/store/store.js'
import {makeTempDir} from '../helpers/tmp.js'

async function sink() {
  const store = new Store(await makeTempDir('airlock-layout-'))
  await store.init()
  return {store, layout: new OciLayoutSink(store)}
}

describe('OCI layout', () => {
  it('lists Docker content under the OCI type of the same shape, and reads the real type back', async () => {
    expect(layoutEntryMediaType(MediaType.dockerList)).toBe(MediaType.ociIndex)
    expect(layoutEntryMediaType(MediaType.dockerManifest)).toBe(MediaType.ociManifest)
    expect(layoutEntryMediaType(MediaType.ociIndex)).toBe(MediaType.ociIndex)
    const {store, layout} = await sink()
    const bytes = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.dockerList, manifests: []}))
    const desc = {mediaType: MediaType.dockerList, digest: sha256Digest(bytes), size: bytes.length}
    await layout.putManifest(desc, bytes)
    await layout.tag('reg.example/a:1', desc)
    const index = await readLayoutIndex(store.images)
    expect(index.manifests[0].mediaType).toBe(MediaType.ociIndex)
    expect(await readFile(store.blobPath(desc.digest))).toEqual(bytes)
    expect((await new OciLayoutSource(store.images).resolve('reg.example/a:1'))?.mediaType).toBe(MediaType.dockerList)
  })

  it('replaces the entry of a ref and keeps the others, from tags written at once', async () => {
    const {store, layout} = await sink()
    const mk = (n: number) => {
      const b = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociManifest, n}))
      return {mediaType: MediaType.ociManifest, digest: sha256Digest(b), size: b.length}
    }
    await Promise.all([layout.tag('r/a:1', mk(1)), layout.tag('r/b:1', mk(2)), layout.tag('r/c:1', mk(3))])
    await layout.tag('r/a:1', mk(4))
    const index = await readLayoutIndex(store.images)
    expect(index.manifests.map((m) => [m.annotations?.['org.opencontainers.image.ref.name'], m.digest])).toEqual([
      ['r/a:1', mk(4).digest],
      ['r/b:1', mk(2).digest],
      ['r/c:1', mk(3).digest],
    ])
    expect(index.mediaType).toBe(MediaType.ociIndex)
  })

  it('with deferIndex, keeps thousands of tags in memory and writes index.json once on flush, keeping what was there', async () => {
    const {store, layout: first} = await sink()
    try {
      const mk = (n: number) => {
        const b = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociManifest, n}))
        return {mediaType: MediaType.ociManifest, digest: sha256Digest(b), size: b.length}
      }
      await first.tag('r/kept:1', mk(-1))
      const layout = new OciLayoutSink(store, {deferIndex: true})
      const before = await stat(store.indexPath)
      await Promise.all(Array.from({length: 3000}, (_, i) => layout.tag(`r/app-${i}:1`, mk(i))))
      // Not rewritten per tag: the file is as the earlier run left it until flush.
      expect((await stat(store.indexPath)).mtimeMs).toBe(before.mtimeMs)
      expect((await readLayoutIndex(store.images)).manifests).toHaveLength(1)
      await layout.flush()
      const names = (await readLayoutIndex(store.images)).manifests.map(
        (m) => m.annotations?.['org.opencontainers.image.ref.name'],
      )
      expect(names).toHaveLength(3001)
      expect(names).toContain('r/kept:1')
      expect(names).toContain('r/app-2999:1')
    } finally {
      await rm(store.root, {recursive: true, force: true})
    }
  })

  it('refuses manifest bytes that do not match their digest', async () => {
    const {layout} = await sink()
    const bytes = Buffer.from('{}')
    await expect(
      layout.putManifest({mediaType: MediaType.ociManifest, digest: sha256Digest('other'), size: 2}, bytes),
    ).rejects.toBeInstanceOf(IntegrityError)
  })
})
