import {createHash} from 'node:crypto'
import {writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {BundleLock} from '../../src/lib/bundle-json.js'
import {OciArchive} from '../../src/lib/oci/archive.js'
import {RegistryContent} from '../../src/lib/serve/registry-content.js'
import {type RawEntry, tarBytes} from '../helpers/bundle-fixture.js'
import {MEDIA} from '../helpers/images.js'
import {makeTempDir} from '../helpers/tmp.js'

// What the served registry holds, from an oci-archive written byte by byte here and a lock
// that lists referrers as bundle.json does (`images[].referrers`).

const digestOf = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`
const json = (x: unknown) => Buffer.from(JSON.stringify(x))

const config = json({architecture: 'amd64', os: 'linux', config: {}, rootfs: {type: 'layers', diff_ids: []}})
const layer = Buffer.from('layer bytes')
const dockerManifest = json({
  schemaVersion: 2,
  mediaType: MEDIA.dockerManifest,
  config: {mediaType: MEDIA.dockerConfig, digest: digestOf(config), size: config.length},
  layers: [{mediaType: MEDIA.dockerLayer, digest: digestOf(layer), size: layer.length}],
})
// An OCI manifest that leaves its mediaType out, as OCI allows.
const bareManifest = json({
  schemaVersion: 2,
  config: {mediaType: MEDIA.ociConfig, digest: digestOf(config), size: config.length},
  layers: [],
})
const empty = Buffer.from('{}')
const sbom = json({
  schemaVersion: 2,
  mediaType: MEDIA.ociManifest,
  artifactType: 'application/spdx+json',
  config: {mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(empty), size: 2},
  layers: [{mediaType: 'application/spdx+json', digest: digestOf(empty), size: 2}],
  subject: {mediaType: MEDIA.dockerManifest, digest: digestOf(dockerManifest), size: dockerManifest.length},
  annotations: {'org.opencontainers.image.created': '2024-01-01T00:00:00Z'},
})
const sig = json({
  schemaVersion: 2,
  mediaType: MEDIA.ociManifest,
  config: {mediaType: 'application/vnd.dev.cosign.artifact.sig.v1+json', digest: digestOf(empty), size: 2},
  layers: [],
  subject: {mediaType: MEDIA.dockerManifest, digest: digestOf(dockerManifest), size: dockerManifest.length},
})
// A cosign signature found by its sha256-<hex>.sig tag: no subject field of its own.
const tagged = json({
  schemaVersion: 2,
  mediaType: MEDIA.ociManifest,
  config: {mediaType: MEDIA.ociConfig, digest: digestOf(config), size: config.length},
  layers: [],
})

const blobs = [config, layer, dockerManifest, bareManifest, empty, sbom, sig, tagged]
const lock: BundleLock = {
  apiVersion: 'airlock/v1',
  name: 'content',
  images: [
    {
      ref: 'docker.io/library/app:1.0',
      digest: digestOf(dockerManifest),
      mediaType: MEDIA.dockerManifest,
      platforms: ['linux/amd64'],
      size: 1,
      referrers: [
        {
          digest: digestOf(sbom),
          mediaType: MEDIA.ociManifest,
          artifactType: 'application/spdx+json',
          size: sbom.length,
          subject: digestOf(dockerManifest),
        },
        {
          digest: digestOf(sig),
          mediaType: MEDIA.ociManifest,
          artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
          size: sig.length,
          subject: digestOf(dockerManifest),
        },
        {
          digest: digestOf(tagged),
          mediaType: MEDIA.ociManifest,
          artifactType: MEDIA.ociConfig,
          size: tagged.length,
          subject: digestOf(dockerManifest),
          tag: `${digestOf(dockerManifest).replace(':', '-')}.sig`,
        },
      ],
    } as BundleLock['images'][number],
    {
      ref: '127.0.0.1:5001/library/app:2.0',
      digest: digestOf(bareManifest),
      mediaType: MEDIA.ociManifest,
      platforms: ['linux/amd64'],
      size: 1,
    },
  ],
  files: [],
}

let archive: OciArchive
let content: RegistryContent

beforeAll(async () => {
  const dir = await makeTempDir('airlock-serve-content-')
  const entries: RawEntry[] = [
    {name: 'oci-layout', data: json({imageLayoutVersion: '1.0.0'})},
    {name: 'index.json', data: json({schemaVersion: 2, manifests: []})},
    ...blobs.map((b) => ({name: `blobs/sha256/${digestOf(b).slice(7)}`, data: b})),
  ]
  await writeFile(join(dir, 'offline-images.tar'), tarBytes(entries))
  archive = await OciArchive.open([join(dir, 'offline-images.tar')])
  content = new RegistryContent([archive], [lock])
})

afterAll(async () => {
  await archive?.close()
})

describe('RegistryContent', () => {
  it("names each image at its path without and with the host; a shared path keeps the first image's tags and the host-kept names apart", () => {
    expect(content.repositoryNames()).toEqual(['127.0.0.1_5001/library/app', 'docker.io/library/app', 'library/app'])
    expect([...content.repository('library/app')!.tags.keys()].sort()).toEqual([
      '1.0',
      '2.0',
      `${digestOf(dockerManifest).replace(':', '-')}.sig`,
    ])
    expect(content.repository('docker.io/library/app')!.tags.get('2.0')).toBeUndefined()
    expect(content.repository('127.0.0.1_5001/library/app')!.tags.get('2.0')).toBe(digestOf(bareManifest))
    // containerd's ?ns= picks the host-kept repository.
    expect(content.repository('library/app', '127.0.0.1:5001')!.name).toBe('127.0.0.1_5001/library/app')
    expect(content.repository('library/app', 'registry-1.docker.io')!.name).toBe('docker.io/library/app')
    expect(content.repository('library/other')).toBeUndefined()
  })

  it('gives each manifest its real media type, and no blob that is not a manifest', async () => {
    expect((await content.manifest(digestOf(dockerManifest)))?.mediaType).toBe(MEDIA.dockerManifest)
    expect((await content.manifest(digestOf(bareManifest)))?.mediaType).toBe(MEDIA.ociManifest)
    expect((await content.manifest(digestOf(sbom)))?.bytes).toEqual(sbom)
    for (const b of [config, layer, empty]) expect(await content.manifest(digestOf(b))).toBeUndefined()
    expect(await content.manifest(`sha256:${'0'.repeat(64)}`)).toBeUndefined()
    expect(content.blobSize(digestOf(layer))).toBe(layer.length)
  })

  it("lists referrers from the lock with artifactType and their manifests' annotations, only those whose subject names the digest", async () => {
    expect(await content.referrersOf(digestOf(dockerManifest))).toEqual([
      {
        mediaType: MEDIA.ociManifest,
        digest: digestOf(sbom),
        size: sbom.length,
        artifactType: 'application/spdx+json',
        annotations: {'org.opencontainers.image.created': '2024-01-01T00:00:00Z'},
      },
      {
        mediaType: MEDIA.ociManifest,
        digest: digestOf(sig),
        size: sig.length,
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      },
    ])
    expect(await content.referrersOf(digestOf(bareManifest))).toEqual([])
    // The tagged signature is not a referrer of the image, but its tag finds it.
    expect(content.repository('library/app')!.tags.get(`${digestOf(dockerManifest).replace(':', '-')}.sig`)).toBe(
      digestOf(tagged),
    )
  })

  it('streams any byte range of a blob out of the tar', async () => {
    const chunks: Buffer[] = []
    for await (const c of content.openBlob(digestOf(layer), 2, 6)) chunks.push(c as Buffer)
    expect(Buffer.concat(chunks).toString()).toBe(layer.subarray(2, 7).toString())
  })
})
