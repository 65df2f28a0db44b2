import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {verifyBundle} from '../../../src/lib/bundle/format/verify.js'
import {writeBundle} from '../../../src/lib/bundle/write/bundle.js'
import {MEDIA} from '../../helpers/images.js'
import {DEFAULT_FILES, DEFAULT_IMAGES, makeStoreFixture, type StoreFixture} from '../../helpers/store-fixture.js'
import {makeTempDir} from '../../helpers/tmp.js'

// Reproducibility is a promise across versions, not only between two runs:
// a store made from a fixed seed is bundled and the archive's sha256 is
// compared with the one this version of airlock first wrote. A change that
// moves a byte of offline-images.tar (entry order, headers, mtimes, modes,
// index.json, referrer entries, what a delta leaves out) fails here; if it is
// meant, it is a change users must be told about, not a constant to update.

const GOLDEN = {
  full: {
    images: '5279fd877f0a45fe89a2dd1ed6b2972d7ea83ccd7bd200accd189521a7df9ef8',
    lock: '59bfbbb8a774215b057b41c2374432b74605e20f752eabe60bea52ff997624df',
  },
  delta: {
    images: 'd7a202e0f0c54fc85892ecee80b1f9230b600c32406f0d2b51e76d9404946633',
    lock: 'f3bdd91b5f64e5b35d20531d8857913e30818b4bde9bf69e45926b97ce827031',
  },
}

const run = promisify(execFile)
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')
const digestOf = (b: Buffer | string) => `sha256:${sha256(b)}`
const fileSha = async (p: string) => sha256(await readFile(p))

const SBOM_TYPE = 'application/vnd.example.sbom.v1+json'
const SIG_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
const EMPTY = '{}'
const FOREIGN = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'

let store: StoreFixture
let work: string

/** Bytes put into the store's blobs, described. */
async function put(
  data: string | Buffer,
  mediaType: string,
): Promise<{mediaType: string; digest: string; size: number}> {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data)
  await writeFile(join(store.root, 'images', 'blobs', 'sha256', sha256(b)), b)
  return {mediaType, digest: digestOf(b), size: b.length}
}

/** A referrer manifest (OCI 1.1 artifact) of `subject`, its blobs in the store. */
async function artifact(
  subject: {mediaType: string; digest: string; size: number} | undefined,
  artifactType: string,
  body: string,
) {
  const config = await put(EMPTY, 'application/vnd.oci.empty.v1+json')
  const layer = await put(body, artifactType)
  const bytes = JSON.stringify({
    schemaVersion: 2,
    mediaType: MEDIA.ociManifest,
    artifactType,
    config,
    layers: [layer],
    ...(subject ? {subject} : {}),
  })
  return put(bytes, MEDIA.ociManifest)
}

beforeAll(async () => {
  work = await makeTempDir('airlock-golden-')
  store = await makeStoreFixture({
    root: join(work, 'store'),
    seed: 'airlock golden store 1',
    images: [
      ...DEFAULT_IMAGES,
      // Docker manifest list, and a ref that sorts before `multi:1.0` by code unit but after it by locale.
      {
        ref: 'quay.io/example/multi.docker:2',
        format: 'docker',
        platforms: ['linux/amd64', 'linux/arm/v7'],
        layers: 1,
        layerSize: 2_000,
      },
    ],
    files: DEFAULT_FILES,
    name: 'golden',
  })
  const index = JSON.parse(await readFile(join(store.root, 'images', 'index.json'), 'utf8'))
  const records = JSON.parse(await readFile(join(store.root, 'records.json'), 'utf8'))

  // An image with foreign layers (Windows-style): one the store holds, one only at its URL.
  const config = await put(
    JSON.stringify({architecture: 'amd64', os: 'windows', rootfs: {type: 'layers', diff_ids: []}}),
    MEDIA.dockerConfig,
  )
  const own = await put(Buffer.from('own layer'), MEDIA.dockerLayer)
  const held = {
    ...(await put(Buffer.from('foreign layer the store holds'), FOREIGN)),
    urls: ['https://foreign.example/held'],
  }
  const away = {
    mediaType: FOREIGN,
    digest: digestOf('foreign layer only at its url'),
    size: 29,
    urls: ['https://foreign.example/away'],
  }
  const win = await put(
    JSON.stringify({schemaVersion: 2, mediaType: MEDIA.dockerManifest, config, layers: [held, away, own]}),
    MEDIA.dockerManifest,
  )
  const winRef = 'mcr.microsoft.com/windows/nanoserver:ltsc2022'
  index.manifests.push({
    mediaType: MEDIA.ociManifest,
    digest: win.digest,
    size: win.size,
    annotations: {'org.opencontainers.image.ref.name': winRef, 'io.containerd.image.name': winRef},
  })
  records.images.push({
    ref: winRef,
    digest: win.digest,
    mediaType: MEDIA.dockerManifest,
    platforms: ['windows/amd64'],
    size: win.size + config.size + held.size + own.size,
  })

  // Referrers: an SBOM of nginx (by subject), a cosign-style signature of it found by tag (no subject
  // field), the SBOM's signature (a referrer of a referrer), and an SBOM of one platform of multi.
  const nginx = records.images.find((i: {ref: string}) => i.ref === 'docker.io/library/nginx:1.25.3')
  const nginxDesc = {
    mediaType: nginx.mediaType,
    digest: nginx.digest,
    size: index.manifests.find((m: {digest: string}) => m.digest === nginx.digest).size,
  }
  const sbom = await artifact(nginxDesc, SBOM_TYPE, '{"bomFormat":"CycloneDX"}')
  const sig = await artifact(undefined, SIG_TYPE, `{"critical":{"image":{"docker-manifest-digest":"${nginx.digest}"}}}`)
  const sbomSig = await artifact(
    undefined,
    SIG_TYPE,
    `{"critical":{"image":{"docker-manifest-digest":"${sbom.digest}"}}}`,
  )
  const multi = records.images.find((i: {ref: string}) => i.ref === 'quay.io/example/multi:1.0')
  const multiIndex = JSON.parse(
    await readFile(join(store.root, 'images', 'blobs', 'sha256', multi.digest.slice(7)), 'utf8'),
  )
  const armSbom = await artifact(multiIndex.manifests[1], SBOM_TYPE, '{"bomFormat":"CycloneDX","arm":true}')
  const tagOf = (d: string, kind: string) => `sha256-${d.slice(7)}.${kind}`
  nginx.referrers = [
    {
      digest: sig.digest,
      mediaType: sig.mediaType,
      artifactType: SIG_TYPE,
      size: sig.size,
      subject: nginx.digest,
      tag: tagOf(nginx.digest, 'sig'),
    },
    {digest: sbom.digest, mediaType: sbom.mediaType, artifactType: SBOM_TYPE, size: sbom.size, subject: nginx.digest},
    {
      digest: sbomSig.digest,
      mediaType: sbomSig.mediaType,
      artifactType: SIG_TYPE,
      size: sbomSig.size,
      subject: sbom.digest,
      tag: tagOf(sbom.digest, 'sig'),
    },
  ]
  const arm = {
    digest: armSbom.digest,
    mediaType: armSbom.mediaType,
    artifactType: SBOM_TYPE,
    size: armSbom.size,
    subject: multiIndex.manifests[1].digest,
  }
  multi.referrers = [arm]
  // A second tag of the same index, with the same referrer (both listed in index.json, its content once).
  const latest = 'quay.io/example/multi:latest'
  const multiEntry = index.manifests.find((m: {digest: string}) => m.digest === multi.digest)
  index.manifests.push({
    ...multiEntry,
    annotations: {'org.opencontainers.image.ref.name': latest, 'io.containerd.image.name': latest},
  })
  records.images.push({...multi, ref: latest, referrers: [{...arm}]})
  await writeFile(join(store.root, 'images', 'index.json'), JSON.stringify(index, null, 2))
  await writeFile(join(store.root, 'records.json'), `${JSON.stringify(records, null, 2)}\n`)
})

afterAll(async () => {
  if (work) await rm(work, {recursive: true, force: true})
})

describe('offline-images.tar is byte for byte what it always was for the same store', () => {
  it('a full bundle (mtime 0)', async () => {
    const out = join(work, 'full')
    await writeBundle({store: store.root, out, mtime: 0})
    expect(await verifyBundle(out)).toMatchObject({ok: true, problems: []})
    // What the constant stands for, readably.
    const listing = (
      await run('tar', ['--full-time', '-tvf', join(out, 'offline-images.tar')], {env: {...process.env, TZ: 'UTC'}})
    ).stdout
      .trim()
      .split('\n')
    expect(listing.slice(0, 4).map((l) => l.replace(/ +/g, ' '))).toEqual([
      '-rw-r--r-- 0/0 30 1970-01-01 00:00:00 oci-layout',
      expect.stringMatching(/^-rw-r--r-- 0\/0 \d+ 1970-01-01 00:00:00 index\.json$/),
      'drwxr-xr-x 0/0 0 1970-01-01 00:00:00 blobs/',
      'drwxr-xr-x 0/0 0 1970-01-01 00:00:00 blobs/sha256/',
    ])
    const names = listing.slice(4).map((l) => l.split(' ').pop()!)
    expect(names).toEqual([...names].sort())
    expect(names).toContain(`blobs/sha256/${sha256('foreign layer the store holds')}`)
    expect(names).not.toContain(`blobs/sha256/${sha256('foreign layer only at its url')}`)
    const index = JSON.parse((await run('tar', ['-xOf', join(out, 'offline-images.tar'), 'index.json'])).stdout)
    expect(
      index.manifests.map(
        (m: {annotations: Record<string, string>}) =>
          m.annotations['org.opencontainers.image.ref.name'] ??
          m.annotations['io.airlock.referrer.subject'].slice(0, 15),
      ),
    ).toEqual([
      'docker.io/library/nginx:1.25.3',
      'mcr.microsoft.com/windows/nanoserver:ltsc2022',
      'quay.io/example/multi.docker:2',
      'quay.io/example/multi:1.0',
      'quay.io/example/multi:latest',
      'registry.k8s.io/pause:3.9',
      ...Array(4).fill(expect.stringMatching(/^sha256:/)),
    ])
    expect({
      images: await fileSha(join(out, 'offline-images.tar')),
      lock: await fileSha(join(out, 'bundle.json')),
    }).toEqual(GOLDEN.full)
  })

  it('a delta (--since a base that holds one image whole and one shared layer; SOURCE_DATE_EPOCH mtime)', async () => {
    const records = JSON.parse(await readFile(join(store.root, 'records.json'), 'utf8'))
    const pause = records.images.find((i: {ref: string}) => i.ref === 'registry.k8s.io/pause:3.9')
    const shared = store.images[0].blobs[0]
    const base = {
      apiVersion: 'airlock/v1',
      name: 'golden',
      version: '0.9.0',
      images: [
        {
          ref: pause.ref,
          digest: pause.digest,
          mediaType: pause.mediaType,
          platforms: pause.platforms,
          size: pause.size,
        },
      ],
      files: [],
      blobs: [{digest: shared, mediaType: MEDIA.ociLayer, size: 5_000}],
    }
    const baseFile = join(work, 'base.json')
    await writeFile(baseFile, `${JSON.stringify(base, null, 2)}\n`)
    const out = join(work, 'delta')
    await writeBundle({store: store.root, out, mtime: 1_700_000_000, since: [baseFile]})
    const lock = JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8'))
    expect(lock.blobs.filter((b: {fromBase?: boolean}) => b.fromBase).map((b: {digest: string}) => b.digest)).toContain(
      shared,
    )
    expect({
      images: await fileSha(join(out, 'offline-images.tar')),
      lock: await fileSha(join(out, 'bundle.json')),
    }).toEqual(GOLDEN.delta)
  })
})
