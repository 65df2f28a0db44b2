import {readFile} from 'node:fs/promises'

import {layoutBlobPath, OciLayoutSink, OciLayoutSource} from '../../src/lib/oci/layout.js'
import {Store} from '../../src/lib/store/store.js'
import {imageSinkContract, imageSourceContract, putSmallImage, smallImage} from '../helpers/image-role-contracts.js'
import {MemoryImages} from '../helpers/memory-images.js'
import {makeTempDir} from '../helpers/tmp.js'

// The registry, as a sink and a source, runs the same suites in test/e2e/image-roles-registry.test.ts
// (the real registry) and test/importers/registry-sink.test.ts (the in-process fake).

const REF = 'registry.example/team/app:1.0'

async function layout(): Promise<{store: Store; sink: OciLayoutSink}> {
  const store = new Store(await makeTempDir('image-roles-'))
  await store.init()
  return {store, sink: new OciLayoutSink(store)}
}

imageSinkContract('OciLayoutSink', async () => {
  const {store, sink} = await layout()
  return {
    sink,
    reference: REF,
    read: (digest) => readFile(layoutBlobPath(store.images, digest)).catch(() => undefined),
    resolve: (ref) => new OciLayoutSource(store.images).resolve(ref),
  }
})

imageSinkContract('MemoryImages', async () => {
  const sink = new MemoryImages()
  return {sink, reference: REF, read: async (digest) => sink.content.get(digest), resolve: (ref) => sink.resolve(ref)}
})

imageSourceContract('OciLayoutSource', async () => {
  const {store, sink} = await layout()
  const image = await putSmallImage(sink)
  return {source: new OciLayoutSource(store.images), image}
})

imageSourceContract('MemoryImages', async () => {
  const source = new MemoryImages()
  const image = smallImage()
  source.add(image.config, image.descs.config.mediaType)
  source.add(image.layer, image.descs.layer.mediaType)
  source.add(image.manifest, image.descs.manifest.mediaType)
  return {source, image}
})
