import {execFile} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {createWriteStream} from 'node:fs'
import {mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {MEDIA_BY_FORMAT as MT} from './images.js'
import type {Referrer} from './referrers.js'
import {makeTempDir} from './tmp.js'

/**
 * A bundle made for import tests, independent of src/: an oci-archive
 * (`offline-images.tar`, a GNU tar of an OCI layout) with random images,
 * single- and multi-platform, OCI or Docker media types, sharing base layers
 * when asked; plus `bundle.json`, `SHA256SUMS` and the two (empty) file
 * archives, so that the bundle is complete.
 */

const run = promisify(execFile)

export interface FixtureImageSpec {
  /** Full normalized reference, e.g. `docker.io/library/web:1.0`. */
  ref: string
  platforms?: string[]
  format?: 'oci' | 'docker'
  layers?: number
  layerSize?: number
  /** Layers shared with other images (put into every platform's manifest first). */
  shared?: FixtureBlob[]
  /**
   * Signatures, SBOMs... of the image, made from its root descriptor; written
   * as airlock stores them: blobs in the layout, an index.json entry each
   * (no ref name, the subject and tag in annotations), listed under the
   * image in bundle.json.
   */
  referrers?: (root: {ref: string; digest: string; mediaType: string; size: number; children: string[]}) => Referrer[]
}

export interface FixtureBlob {
  digest: string
  size: number
  mediaType: string
}

export interface FixtureImage {
  ref: string
  digest: string
  mediaType: string
  platforms: string[]
  size: number
  /** Every config and layer, all platforms. */
  blobs: FixtureBlob[]
  /** Digests of the child manifests of an index. */
  children: string[]
  referrers: Referrer[]
}

export interface BundleFixture {
  dir: string
  images: FixtureImage[]
  lock: {apiVersion: 'airlock/v1'; name: string; images: object[]; files: object[]}
}

class LayoutWriter {
  constructor(readonly root: string) {}

  async put(data: Buffer | string): Promise<{digest: string; size: number}> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data
    const hex = createHash('sha256').update(buf).digest('hex')
    await writeFile(join(this.root, 'blobs', 'sha256', hex), buf)
    return {digest: `sha256:${hex}`, size: buf.length}
  }

  /** Random bytes streamed to disk (large layers never sit in memory), gzip magic first. */
  async randomBlob(size: number, mediaType: string): Promise<FixtureBlob> {
    const hash = createHash('sha256')
    const tmp = join(this.root, `tmp-${randomBytes(8).toString('hex')}`)
    const out = createWriteStream(tmp)
    let left = size
    let first = true
    while (left > 0) {
      const chunk = randomBytes(Math.min(left, 1 << 20))
      if (first && chunk.length >= 2) {
        chunk[0] = 0x1f
        chunk[1] = 0x8b
      }
      first = false
      hash.update(chunk)
      left -= chunk.length
      if (!out.write(chunk)) await new Promise<void>((r) => out.once('drain', () => r()))
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
    const hex = hash.digest('hex')
    await rename(tmp, join(this.root, 'blobs', 'sha256', hex))
    return {digest: `sha256:${hex}`, size, mediaType}
  }
}

async function writeImage(w: LayoutWriter, spec: FixtureImageSpec): Promise<FixtureImage> {
  const format = spec.format ?? 'oci'
  const mt = MT[format]
  const platforms = spec.platforms ?? ['linux/amd64']
  const blobs: FixtureBlob[] = []
  const manifests: {digest: string; size: number; platform: string; bytes: Buffer}[] = []
  for (const platform of platforms) {
    const [os, architecture, variant] = platform.split('/')
    const layers: FixtureBlob[] = [...(spec.shared ?? [])]
    for (let i = 0; i < (spec.layers ?? 2); i++) layers.push(await w.randomBlob(spec.layerSize ?? 4096, mt.layer))
    const config = JSON.stringify({
      architecture,
      os,
      ...(variant ? {variant} : {}),
      config: {Labels: {ref: spec.ref, nonce: randomBytes(8).toString('hex')}},
      rootfs: {type: 'layers', diff_ids: layers.map(() => `sha256:${randomBytes(32).toString('hex')}`)},
    })
    const c = await w.put(config)
    const configDesc = {mediaType: mt.config, ...c}
    blobs.push(configDesc, ...layers)
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: mt.manifest,
        config: configDesc,
        layers: layers.map((l) => ({mediaType: l.mediaType, digest: l.digest, size: l.size})),
      }),
    )
    const m = await w.put(manifest)
    manifests.push({...m, platform, bytes: manifest})
  }
  let top: {digest: string; size: number; mediaType: string}
  let children: string[] = []
  if (platforms.length === 1) {
    top = {digest: manifests[0].digest, size: manifests[0].size, mediaType: mt.manifest}
  } else {
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: mt.index,
      manifests: manifests.map((m) => {
        const [os, architecture, variant] = m.platform.split('/')
        return {
          mediaType: mt.manifest,
          digest: m.digest,
          size: m.size,
          platform: {os, architecture, ...(variant ? {variant} : {})},
        }
      }),
    })
    top = {...(await w.put(index)), mediaType: mt.index}
    children = manifests.map((m) => m.digest)
  }
  const unique = new Map(blobs.map((b) => [b.digest, b]))
  const size =
    top.size +
    manifests.reduce((n, m) => n + (platforms.length > 1 ? m.size : 0), 0) +
    [...unique.values()].reduce((n, b) => n + b.size, 0)
  const referrers =
    spec.referrers?.({ref: spec.ref, digest: top.digest, mediaType: top.mediaType, size: top.size, children}) ?? []
  for (const r of referrers) {
    for (const b of r.blobs) await w.put(b.data)
    await w.put(r.manifestBytes)
  }
  return {
    ref: spec.ref,
    digest: top.digest,
    mediaType: top.mediaType,
    platforms,
    size,
    blobs: [...unique.values()],
    children,
    referrers,
  }
}

/**
 * Write a bundle with these images to a new temporary directory (or `dir`).
 * `shared` layers can be made first with `opts.sharedLayers` sizes: every
 * image then starts with them.
 */
export async function makeRegistryBundle(
  specs: FixtureImageSpec[],
  opts: {dir?: string; sharedLayers?: number[]; name?: string} = {},
): Promise<BundleFixture> {
  const dir = opts.dir ?? (await makeTempDir('airlock-rbundle-'))
  await mkdir(dir, {recursive: true})
  const layout = join(dir, '.layout')
  await mkdir(join(layout, 'blobs', 'sha256'), {recursive: true})
  const w = new LayoutWriter(layout)
  const shared: FixtureBlob[] = []
  for (const s of opts.sharedLayers ?? []) shared.push(await w.randomBlob(s, MT.oci.layer))
  const images: FixtureImage[] = []
  for (const spec of specs) {
    const img = await writeImage(w, {...spec, shared: spec.shared ?? (spec.format === 'docker' ? [] : shared)})
    images.push(img)
  }
  const index = {
    schemaVersion: 2,
    mediaType: MT.oci.index,
    // As airlock's bundles do: Docker content listed under the OCI type of the same shape
    // (skopeo resolves names only on those); the documents keep their own mediaType.
    manifests: images.map((i) => ({
      mediaType:
        i.mediaType === MT.docker.index
          ? MT.oci.index
          : i.mediaType === MT.docker.manifest
            ? MT.oci.manifest
            : i.mediaType,
      digest: i.digest,
      size: 0,
      annotations: {'org.opencontainers.image.ref.name': i.ref, 'io.containerd.image.name': i.ref},
    })),
  }
  for (let k = 0; k < images.length; k++) {
    const hex = images[k].digest.slice(7)
    index.manifests[k].size = (await readFile(join(layout, 'blobs', 'sha256', hex))).length
  }
  const referrerEntries = new Map<string, object>()
  for (const r of images.flatMap((i) => i.referrers)) {
    const annotations = {'io.airlock.referrer.subject': r.subject, ...(r.tag ? {'io.airlock.referrer.tag': r.tag} : {})}
    referrerEntries.set(r.digest, {
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      artifactType: r.artifactType,
      annotations,
    })
  }
  ;(index.manifests as object[]).push(...referrerEntries.values())
  await writeFile(join(layout, 'index.json'), JSON.stringify(index))
  await writeFile(join(layout, 'oci-layout'), JSON.stringify({imageLayoutVersion: '1.0.0'}))
  await run('tar', [
    '--sort=name',
    '--owner=0',
    '--group=0',
    '--numeric-owner',
    '--mtime=@0',
    '-cf',
    join(dir, 'offline-images.tar'),
    '-C',
    layout,
    'oci-layout',
    'index.json',
    'blobs',
  ])
  await rm(layout, {recursive: true, force: true})
  // The two file archives, empty but well formed (one top folder each).
  for (const [name, top] of [
    ['offline-files.tar.gz', 'offline-files'],
    ['component-tools.tar.gz', 'component-tools'],
  ]) {
    const src = join(dir, `.${top}`)
    await mkdir(join(src, top), {recursive: true})
    await run('tar', [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '--mtime=@0',
      '-czf',
      join(dir, name),
      '-C',
      src,
      top,
    ])
    await rm(src, {recursive: true, force: true})
  }
  const lock = {
    apiVersion: 'airlock/v1' as const,
    name: opts.name ?? 'import-registry-test',
    images: images.map((i) => ({
      ref: i.ref,
      digest: i.digest,
      mediaType: i.mediaType,
      platforms: i.platforms,
      size: i.size,
      ...(i.referrers.length > 0
        ? {
            referrers: i.referrers.map((r) => ({
              digest: r.digest,
              mediaType: r.mediaType,
              artifactType: r.artifactType,
              size: r.size,
              subject: r.subject,
              ...(r.tag ? {tag: r.tag} : {}),
            })),
          }
        : {}),
    })),
    files: [],
  }
  await writeFile(join(dir, 'bundle.json'), `${JSON.stringify(lock, null, 2)}\n`)
  const {stdout} = await run(
    'sha256sum',
    ['offline-files.tar.gz', 'component-tools.tar.gz', 'offline-images.tar', 'bundle.json'],
    {cwd: dir},
  )
  await writeFile(join(dir, 'SHA256SUMS'), stdout)
  return {dir, images, lock}
}
