import {createHash} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, readFile, rename, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {gzipSync} from 'node:zlib'

import {Header} from 'tar'

import {MEDIA_BY_FORMAT} from './images.js'

// Many tiny images written straight into the distribution registry's
// filesystem storage (docker/registry/v2/...), as the registry itself lays
// them out after a push: thousands of images in seconds, where pushing them
// through the API takes minutes. The content is a function of the index
// alone, so a folder written once can be reused (see `countImageStorage`).

export interface TinyImage {
  repository: string
  tag: string
  /** The index (OCI) or manifest list (Docker) digest. */
  digest: string
}

export interface TinyImageSet {
  /** The registry's rootdirectory. */
  dataDir: string
  images: TinyImage[]
}

const sha256hex = (b: Buffer | string) => createHash('sha256').update(b).digest('hex')

/** `n` bytes derived from a seed: fixed across runs, unlike random bytes. */
function seeded(seed: string, n: number): Buffer {
  const out = Buffer.alloc(n)
  for (let off = 0, i = 0; off < n; i++) off += createHash('sha256').update(`${seed}/${i}`).digest().copy(out, off)
  return out
}

/** A gzip of a one-file tar of `content` (a real, tiny layer) and the sha256 of the tar (its diff_id). */
function tinyLayer(name: string, content: Buffer): {data: Buffer; diffId: string} {
  const header = Buffer.alloc(512)
  new Header({path: name, type: 'File', size: content.length, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0}).encode(
    header,
    0,
  )
  const tar = Buffer.concat([header, content, Buffer.alloc((512 - (content.length % 512)) % 512), Buffer.alloc(1024)])
  return {data: gzipSync(tar, {level: 1}), diffId: `sha256:${sha256hex(tar)}`}
}

class StorageWriter {
  private readonly blobsWritten = new Set<string>()
  constructor(private readonly v2: string) {}

  async blob(data: Buffer): Promise<string> {
    const hex = sha256hex(data)
    if (!this.blobsWritten.has(hex)) {
      const dir = join(this.v2, 'blobs', 'sha256', hex.slice(0, 2), hex)
      await mkdir(dir, {recursive: true})
      await writeFile(join(dir, 'data'), data)
      this.blobsWritten.add(hex)
    }
    return hex
  }

  private async link(path: string, hex: string): Promise<void> {
    await mkdir(path, {recursive: true})
    await writeFile(join(path, 'link'), `sha256:${hex}`)
  }

  layerLink = (repo: string, hex: string) =>
    this.link(join(this.v2, 'repositories', repo, '_layers', 'sha256', hex), hex)
  revision = (repo: string, hex: string) =>
    this.link(join(this.v2, 'repositories', repo, '_manifests', 'revisions', 'sha256', hex), hex)

  async tag(repo: string, tag: string, hex: string): Promise<void> {
    const base = join(this.v2, 'repositories', repo, '_manifests', 'tags', tag)
    await this.link(join(base, 'current'), hex)
    await this.link(join(base, 'index', 'sha256', hex), hex)
  }
}

/**
 * Writes `count` two-platform images (linux/amd64 and linux/arm64), OCI and
 * Docker formats alternating, into a registry storage root. Each platform
 * has a tiny config, one shared base layer and one own layer of
 * `layerBytes`; image i is `count/app-<i>:1.0`.
 */
export async function writeTinyImages(
  dataDir: string,
  count: number,
  opts: {layerBytes?: number; seed?: string} = {},
): Promise<TinyImage[]> {
  const seed = opts.seed ?? 'tiny'
  const w = new StorageWriter(join(dataDir, 'docker', 'registry', 'v2'))
  const base = tinyLayer('base.bin', seeded(`${seed}/base`, 2048))
  const baseHex = await w.blob(base.data)
  const images: TinyImage[] = []
  const platforms = [
    {os: 'linux', architecture: 'amd64'},
    {os: 'linux', architecture: 'arm64'},
  ]
  for (let i = 0; i < count; i++) {
    const format = i % 2 === 0 ? 'oci' : 'docker'
    const media = MEDIA_BY_FORMAT[format]
    const repository = `count/app-${i}`
    await w.layerLink(repository, baseHex)
    const children = []
    for (const p of platforms) {
      const own = tinyLayer(`app-${i}.bin`, seeded(`${seed}/${i}/${p.architecture}`, opts.layerBytes ?? 512))
      const ownHex = await w.blob(own.data)
      const config = Buffer.from(
        JSON.stringify({
          created: '2024-01-01T00:00:00Z',
          ...p,
          config: {Env: ['PATH=/usr/bin:/bin'], Labels: {'org.example.image': String(i)}},
          rootfs: {type: 'layers', diff_ids: [base.diffId, own.diffId]},
        }),
      )
      const configHex = await w.blob(config)
      await w.layerLink(repository, ownHex)
      await w.layerLink(repository, configHex)
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: media.manifest,
          config: {mediaType: media.config, digest: `sha256:${configHex}`, size: config.length},
          layers: [
            {mediaType: media.layer, digest: `sha256:${baseHex}`, size: base.data.length},
            {mediaType: media.layer, digest: `sha256:${ownHex}`, size: own.data.length},
          ],
        }),
      )
      const manifestHex = await w.blob(manifest)
      await w.revision(repository, manifestHex)
      children.push({mediaType: media.manifest, digest: `sha256:${manifestHex}`, size: manifest.length, platform: p})
    }
    const index = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: media.index, manifests: children}))
    const indexHex = await w.blob(index)
    await w.revision(repository, indexHex)
    await w.tag(repository, '1.0', indexHex)
    images.push({repository, tag: '1.0', digest: `sha256:${indexHex}`})
  }
  return images
}

/**
 * A registry storage root of `count` tiny images (see `writeTinyImages`),
 * written once into `cacheDir` and reused after: a folder that is complete
 * carries a `.complete` marker, one that is not is written again.
 */
export async function countImageStorage(cacheDir: string, count: number): Promise<TinyImageSet> {
  const dataDir = join(cacheDir, `tiny-images-v1-${count}`)
  const marker = join(dataDir, '.complete')
  if (!existsSync(marker)) {
    const tmp = `${dataDir}.tmp-${process.pid}`
    await rm(tmp, {recursive: true, force: true})
    const images = await writeTinyImages(tmp, count)
    await writeFile(join(tmp, '.complete'), JSON.stringify(images))
    await rm(dataDir, {recursive: true, force: true})
    await rename(tmp, dataDir)
    return {dataDir, images}
  }
  return {dataDir, images: JSON.parse(await readFile(marker, 'utf8')) as TinyImage[]}
}
