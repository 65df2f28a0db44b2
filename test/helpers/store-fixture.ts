import {createHash, randomBytes} from 'node:crypto'
import {chmod, mkdir, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {layoutEntryMediaType} from '../../src/lib/oci/layout.js'
import {MEDIA_BY_FORMAT as MT} from './images.js'
import {makeTempDir} from './tmp.js'

/**
 * A store as `airlock pull` leaves it, written without src/ (but for the one
 * layout convention below): an OCI image layout with random images
 * (single-platform OCI and Docker, a multi-arch index sharing a base layer),
 * binaries and packages at mirrored paths (one executable), a chart beside
 * its charts/index.yaml, and records.json.
 */

export interface StoreImageSpec {
  ref: string
  format?: 'oci' | 'docker'
  platforms?: string[]
  layers?: number
  layerSize?: number
}

export interface StoreFileSpec {
  kind: 'binary' | 'package' | 'chart'
  path: string
  size?: number
  /** Content instead of random bytes. */
  data?: Buffer
  executable?: boolean
  /** Random bytes from a 16-letter alphabet (gzip gets about 2:1, like binaries) instead of incompressible ones. */
  compressible?: boolean
}

const ALPHABET = Buffer.from('etaoinshrdlucmfw')

/** Bytes of a sha256 counter stream: the same for the same seed, for stores a test compares byte for byte across versions. */
function seededBytes(seed: string): (size: number) => Buffer {
  let counter = 0
  return (size) => {
    const out = Buffer.alloc(size)
    for (let off = 0; off < size; off += 32)
      createHash('sha256').update(`${seed}\0${counter++}`).digest().copy(out, off)
    return out
  }
}

function compressibleBytes(size: number, random: (size: number) => Buffer): Buffer {
  const b = random(size)
  for (let i = 0; i < b.length; i++) b[i] = ALPHABET[b[i] & 15]
  return b
}

export interface StoreFixture {
  root: string
  images: {ref: string; digest: string; mediaType: string; platforms: string[]; size: number; blobs: string[]}[]
  files: {
    kind: 'binary' | 'package' | 'chart'
    url: string
    path: string
    size: number
    sha256: string
    executable: boolean
  }[]
  /** Every blob digest in the layout. */
  blobs: string[]
}

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

export const DEFAULT_IMAGES: StoreImageSpec[] = [
  {ref: 'docker.io/library/nginx:1.25.3', format: 'oci', layers: 2, layerSize: 20_000},
  {ref: 'registry.k8s.io/pause:3.9', format: 'docker', layers: 1, layerSize: 3_000},
  {
    ref: 'quay.io/example/multi:1.0',
    format: 'oci',
    platforms: ['linux/amd64', 'linux/arm64'],
    layers: 2,
    layerSize: 10_000,
  },
]

export const DEFAULT_FILES: StoreFileSpec[] = [
  {kind: 'binary', path: 'dl.k8s.io/release/v1.29.0/bin/linux/amd64/kubeadm', size: 70_000, executable: true},
  {kind: 'binary', path: 'get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz', size: 30_000},
  {
    kind: 'binary',
    path: 'github.com/containerd/nerdctl/releases/download/v1.7.0/' + 'a-very-long-file-name-'.repeat(6) + '.tar.gz',
    size: 1000,
  },
  {kind: 'package', path: 'example.com/tools/nerdctl-1.7.0-linux-amd64.tar.gz', size: 12_345},
  {kind: 'chart', path: 'charts/nginx-15.1.0.tgz', size: 4_000},
]

export async function makeStoreFixture(
  opts: {
    root?: string
    images?: StoreImageSpec[]
    files?: StoreFileSpec[]
    name?: string
    version?: string
    /** Every byte derived from this instead of random: the same seed gives the same store. */
    seed?: string
  } = {},
): Promise<StoreFixture> {
  const random = opts.seed === undefined ? randomBytes : seededBytes(opts.seed)
  const root = opts.root ?? (await makeTempDir('airlock-store-'))
  const blobsDir = join(root, 'images', 'blobs', 'sha256')
  await mkdir(blobsDir, {recursive: true})
  const blobs = new Set<string>()
  const put = async (data: Buffer): Promise<{digest: string; size: number}> => {
    const hex = sha(data)
    await writeFile(join(blobsDir, hex), data)
    blobs.add(`sha256:${hex}`)
    return {digest: `sha256:${hex}`, size: data.length}
  }
  const randomLayer = (size: number) =>
    Buffer.concat([Buffer.from([0x1f, 0x8b, 0x08, 0]), random(Math.max(0, size - 4))])

  const images: StoreFixture['images'] = []
  const indexEntries: object[] = []
  const shared = randomLayer(5_000)
  for (const spec of opts.images ?? DEFAULT_IMAGES) {
    const mt = MT[spec.format ?? 'oci']
    const platforms = spec.platforms ?? ['linux/amd64']
    const imageBlobs: string[] = []
    let size = 0
    const children: {platform: string; digest: string; size: number}[] = []
    for (const platform of platforms) {
      const [os, architecture, variant] = platform.split('/')
      const layers = []
      const layerData = [shared, ...Array.from({length: spec.layers ?? 1}, () => randomLayer(spec.layerSize ?? 10_000))]
      for (const d of layerData) {
        const b = await put(d)
        layers.push({mediaType: mt.layer, digest: b.digest, size: b.size})
        imageBlobs.push(b.digest)
        size += b.size
      }
      const config = await put(
        Buffer.from(
          JSON.stringify({
            architecture,
            os,
            ...(variant ? {variant} : {}),
            rootfs: {type: 'layers', diff_ids: layers.map(() => `sha256:${sha(random(8))}`)},
            config: {},
          }),
        ),
      )
      imageBlobs.push(config.digest)
      size += config.size
      const manifest = await put(
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: mt.manifest,
            config: {mediaType: mt.config, digest: config.digest, size: config.size},
            layers,
          }),
        ),
      )
      size += manifest.size
      children.push({platform, ...manifest})
    }
    let top: {digest: string; size: number; mediaType: string}
    if (platforms.length === 1) top = {...children[0], mediaType: mt.manifest}
    else {
      const index = await put(
        Buffer.from(
          JSON.stringify({
            schemaVersion: 2,
            mediaType: mt.index,
            manifests: children.map((c) => {
              const [os, architecture, variant] = c.platform.split('/')
              return {
                mediaType: mt.manifest,
                digest: c.digest,
                size: c.size,
                platform: {os, architecture, ...(variant ? {variant} : {})},
              }
            }),
          }),
        ),
      )
      size += index.size
      top = {...index, mediaType: mt.index}
    }
    // As pull writes it: Docker content listed in index.json under its OCI twin type (skopeo resolves
    // names only on those); the bytes, and records.json, keep the Docker type.
    indexEntries.push({
      mediaType: layoutEntryMediaType(top.mediaType),
      digest: top.digest,
      size: top.size,
      annotations: {'org.opencontainers.image.ref.name': spec.ref, 'io.containerd.image.name': spec.ref},
    })
    images.push({
      ref: spec.ref,
      digest: top.digest,
      mediaType: top.mediaType,
      platforms,
      size,
      blobs: [...new Set([...imageBlobs, ...children.map((c) => c.digest), top.digest])],
    })
  }
  await writeFile(join(root, 'images', 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(
    join(root, 'images', 'index.json'),
    JSON.stringify({schemaVersion: 2, mediaType: MT.oci.index, manifests: indexEntries}, null, 2),
  )

  const files: StoreFixture['files'] = []
  for (const f of opts.files ?? DEFAULT_FILES) {
    const data = f.data ?? (f.compressible ? compressibleBytes(f.size ?? 1000, random) : random(f.size ?? 1000))
    const base = f.kind === 'binary' ? 'files' : 'packages'
    const p = join(root, base, ...f.path.split('/'))
    await mkdir(join(p, '..'), {recursive: true})
    await writeFile(p, data)
    await chmod(p, f.executable ? 0o755 : 0o644)
    const url =
      f.kind === 'chart' ? `https://charts.example.com/stable/${f.path.split('/').pop()}` : `https://${f.path}`
    files.push({
      kind: f.kind,
      url,
      path: f.path,
      size: data.length,
      sha256: sha(data),
      executable: Boolean(f.executable),
    })
  }
  const charts = files.filter((f) => f.kind === 'chart')
  if (charts.length > 0) {
    const yaml = `apiVersion: v1\nentries:\n${charts.map((c) => `  ${c.path}:\n  - urls: [${c.path.split('/').pop()}]\n    digest: ${c.sha256}\n`).join('')}generated: "1970-01-01T00:00:00Z"\n`
    await mkdir(join(root, 'packages', 'charts'), {recursive: true})
    await writeFile(join(root, 'packages', 'charts', 'index.yaml'), yaml)
  }
  await mkdir(join(root, '.tmp', 'partial'), {recursive: true})
  const records = {
    apiVersion: 'airlock/v1',
    name: opts.name ?? 'fixture',
    ...(opts.version === undefined ? {version: '1.0.0'} : {version: opts.version}),
    images: images.map(({ref, digest, mediaType, platforms, size}) => ({ref, digest, mediaType, platforms, size})),
    files: files.map(({kind, url, path, size, sha256}) => ({kind, url, path, size, sha256})),
  }
  await writeFile(join(root, 'records.json'), `${JSON.stringify(records, null, 2)}\n`)
  return {root, images, files, blobs: [...blobs].sort()}
}

export async function removeStoreFixture(f: StoreFixture): Promise<void> {
  await rm(f.root, {recursive: true, force: true})
}
