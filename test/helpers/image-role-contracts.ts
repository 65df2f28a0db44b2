import {randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'

import {describe, expect, it} from 'vitest'

import type {Descriptor} from '../../src/lib/content/descriptor.js'
import {sha256Digest} from '../../src/lib/content/digest.js'
import {MediaType} from '../../src/lib/content/media-types.js'
import type {Opener} from '../../src/lib/content/opener.js'
import type {ImageSink, ImageSource} from '../../src/lib/content/roles.js'

const LAYER = 'application/vnd.oci.image.layer.v1.tar+gzip'

const opener =
  (bytes: Buffer): Opener =>
  async () => ({stream: Readable.from([bytes]), start: 0, total: bytes.length, url: 'test:'})

/** Byte equality of blobs: toEqual walks a Buffer element by element, seconds for a layer on a loaded machine. */
const sameBytes = (actual: Buffer | undefined, expected: Buffer) =>
  expect(
    actual !== undefined && actual.equals(expected),
    `${actual?.length} bytes, expected ${expected.length} of them`,
  ).toBe(true)

const desc = (bytes: Buffer, mediaType = LAYER): Descriptor => ({
  mediaType,
  digest: sha256Digest(bytes),
  size: bytes.length,
})

/** A small image: a config, one layer, and the manifest naming them. */
export function smallImage(): {
  config: Buffer
  layer: Buffer
  manifest: Buffer
  descs: {config: Descriptor; layer: Descriptor; manifest: Descriptor}
} {
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      rootfs: {type: 'layers', diff_ids: []},
      n: randomBytes(8).toString('hex'),
    }),
  )
  const layer = randomBytes(200_000)
  const descs = {config: desc(config, MediaType.ociConfig), layer: desc(layer)}
  const manifest = Buffer.from(
    JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociManifest, config: descs.config, layers: [descs.layer]}),
  )
  return {config, layer, manifest, descs: {...descs, manifest: desc(manifest, MediaType.ociManifest)}}
}

/** `smallImage()` written into a sink, blobs first: the content a source's suite reads back. */
export async function putSmallImage(sink: ImageSink): Promise<ReturnType<typeof smallImage>> {
  const image = smallImage()
  for (const [bytes, d] of [
    [image.config, image.descs.config],
    [image.layer, image.descs.layer],
  ] as const)
    await sink.putBlob(d, opener(bytes), {label: 'fixture'})
  await sink.putManifest(image.descs.manifest, image.manifest)
  return image
}

/** An ImageSink under test, with a way to read back what its place holds (undefined: not there). */
export interface ImageSinkPlace {
  sink: ImageSink
  read(digest: string): Promise<Buffer | undefined>
  /** The descriptor a name resolves to there, after `tag`. */
  resolve(reference: string): Promise<Descriptor | undefined>
  /** The reference `tag` is called with (a layout takes a full ref, a registry repository a tag). */
  reference: string
}

const putOpts = {label: 'blob under test'}

/** What every ImageSink promises (content/roles.ts), run against each place that is one. */
export function imageSinkContract(name: string, make: () => Promise<ImageSinkPlace>): void {
  describe(`${name} keeps the ImageSink promises`, () => {
    it('a blob put from an opener is there with its bytes, and hasBlob says so', async () => {
      const {sink, read} = await make()
      const img = smallImage()
      expect(await sink.hasBlob(img.descs.layer)).toBe(false)
      const r = await sink.putBlob(img.descs.layer, opener(img.layer), putOpts)
      expect(r.bytesFetched + r.bytesResumed).toBe(img.layer.length)
      expect(await sink.hasBlob(img.descs.layer)).toBe(true)
      sameBytes(await read(img.descs.layer.digest), img.layer)
    })

    it('a blob whose bytes do not match its digest is refused and never there', async () => {
      const {sink, read} = await make()
      const img = smallImage()
      const wrong = Buffer.from(img.layer)
      wrong[1000] ^= 0xff
      await expect(sink.putBlob(img.descs.layer, opener(wrong), putOpts)).rejects.toThrow(/sha256|digest/)
      expect(await sink.hasBlob(img.descs.layer)).toBe(false)
      expect(await read(img.descs.layer.digest)).toBeUndefined()
    })

    it('hasBlob is false for a blob of another size', async () => {
      const {sink} = await make()
      const img = smallImage()
      await sink.putBlob(img.descs.layer, opener(img.layer), putOpts)
      expect(await sink.hasBlob({...img.descs.layer, size: img.layer.length + 1})).toBe(false)
    })

    it('a manifest is taken after its blobs, refused when its bytes are not its digest, and tagged', async () => {
      const {sink, read, resolve, reference} = await make()
      const img = smallImage()
      await sink.putBlob(img.descs.config, opener(img.config), putOpts)
      await sink.putBlob(img.descs.layer, opener(img.layer), putOpts)
      const tampered = Buffer.from(img.manifest.toString().replace('"schemaVersion":2', '"schemaVersion": 2'))
      await expect(sink.putManifest(img.descs.manifest, tampered)).rejects.toThrow()
      await sink.putManifest(img.descs.manifest, img.manifest)
      expect(await read(img.descs.manifest.digest)).toEqual(img.manifest)
      await sink.tag(reference, img.descs.manifest, img.manifest)
      expect((await resolve(reference))?.digest).toBe(img.descs.manifest.digest)
    })
  })
}

/** An ImageSource under test, holding `smallImage()`'s content (make puts it there). */
export interface ImageSourcePlace {
  source: ImageSource
  image: ReturnType<typeof smallImage>
}

/** What every ImageSource promises: verified manifests, blobs as streams, resumable where the place can. */
export function imageSourceContract(name: string, make: () => Promise<ImageSourcePlace>): void {
  describe(`${name} keeps the ImageSource promises`, () => {
    it('fetchManifest gives the bytes of the digest asked for', async () => {
      const {source, image} = await make()
      const bytes = await source.fetchManifest(image.descs.manifest)
      expect(sha256Digest(bytes)).toBe(image.descs.manifest.digest)
    })

    it('a blob opened at 0 streams all its bytes; opened at an offset it says where it starts', async () => {
      const {source, image} = await make()
      const whole = await source.blobOpener(image.descs.layer)(0)
      const chunks: Buffer[] = []
      for await (const c of whole.stream as AsyncIterable<Buffer>) chunks.push(c)
      sameBytes(Buffer.concat(chunks), image.layer)
      const part = await source.blobOpener(image.descs.layer)(1000)
      const rest: Buffer[] = []
      for await (const c of part.stream as AsyncIterable<Buffer>) rest.push(c)
      sameBytes(Buffer.concat(rest), image.layer.subarray(part.start))
    })

    it('a blob it does not hold fails to open', async () => {
      const {source} = await make()
      const missing = desc(randomBytes(100))
      await expect(
        source
          .blobOpener(missing)(0)
          .then(async (o) => {
            for await (const _ of o.stream as AsyncIterable<Buffer>) void _
          }),
      ).rejects.toThrow()
    })
  })
}
