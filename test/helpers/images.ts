import {createHash, randomBytes} from 'node:crypto'
import {readFileSync} from 'node:fs'
import {gunzipSync, gzipSync} from 'node:zlib'

import {Header} from 'tar'

import {harnessRequest, type HarnessResponse} from './http.js'
import {type RegistryServer} from './registry.js'

// Random images pushed with plain registry API calls (POST/PUT uploads, PUT
// manifests), so tests of airlock's registry code never rely on that code to
// set up their fixtures.

export interface Blob {
  digest: string
  size: number
  mediaType: string
  data: Buffer
}

export interface PushedImage {
  /** host/repo:tag */
  ref: string
  repository: string
  tag: string
  digest: string
  mediaType: string
  platforms: string[]
  manifestBytes: Buffer
  /** Every config and layer, all platforms, each digest once. */
  blobs: Blob[]
  /** The platform manifests of an index / manifest list, in index order. */
  children?: {platform: string; digest: string; mediaType: string; manifestBytes: Buffer}[]
}

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const

/** The same types, by image format. */
export const MEDIA_BY_FORMAT = {
  oci: {manifest: MEDIA.ociManifest, index: MEDIA.ociIndex, config: MEDIA.ociConfig, layer: MEDIA.ociLayer},
  docker: {
    manifest: MEDIA.dockerManifest,
    index: MEDIA.dockerList,
    config: MEDIA.dockerConfig,
    layer: MEDIA.dockerLayer,
  },
} as const

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`
}

// diff_id (sha256 of the uncompressed tar) of layers made here, so configs need not gunzip them again.
const diffIds = new WeakMap<Buffer, string>()

/** A one-file tar, with node-tar encoding the header (independent of airlock's own tar writer). */
function tarOf(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512)
  new Header({path: name, type: 'File', size: content.length, mode: 0o644, mtime: new Date(0), uid: 0, gid: 0}).encode(
    header,
    0,
  )
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512)
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)])
}

/**
 * A layer of exactly `size` bytes (at least ~2 KB): a real gzip of a tar
 * holding one file of random bytes (stored, not compressed, so it is fast and
 * incompressible), padded to the size in the gzip header's comment field.
 */
export function randomLayer(size: number): Blob {
  const blocks = Math.ceil(size / 65535) + 1
  const payload = Math.max(0, size - 2200 - 5 * blocks)
  const tar = tarOf(`layer-${randomBytes(6).toString('hex')}.bin`, randomBytes(payload))
  let data = gzipSync(tar, {level: 0})
  const fill = size - data.length - 1
  if (fill >= 0) {
    // FLG.FCOMMENT: a zero-terminated comment after the 10-byte header; gunzip ignores it.
    const head = Buffer.from(data.subarray(0, 10))
    head[3] |= 0x10
    data = Buffer.concat([head, Buffer.alloc(fill, 0x61), Buffer.from([0]), data.subarray(10)])
  }
  diffIds.set(data, sha256(tar))
  return {digest: sha256(data), size: data.length, mediaType: MEDIA.ociLayer, data}
}

function diffIdOf(layer: Blob): string {
  let id = diffIds.get(layer.data)
  if (!id) {
    try {
      id = sha256(gunzipSync(layer.data))
    } catch {
      id = layer.digest
    }
    diffIds.set(layer.data, id)
  }
  return id
}

export function parsePlatform(p: string): {os: string; architecture: string; variant?: string} {
  const [os, architecture, variant] = p.split('/')
  if (!os || !architecture) throw new Error(`bad platform ${p}`)
  return variant ? {os, architecture, variant} : {os, architecture}
}

function parseChallenge(h: string): {scheme: string; params: Record<string, string>} {
  const m = /^(\w+)\s*(.*)$/s.exec(h.trim())
  const params: Record<string, string> = {}
  if (!m) return {scheme: '', params}
  for (const p of m[2].matchAll(/(\w+)="([^"]*)"/g)) params[p[1]] = p[2]
  return {scheme: m[1].toLowerCase(), params}
}

/** One repository on one registry, answering Basic or Bearer challenges with the registry's test user. */
export class RegistrySession {
  private authorization?: string
  private readonly ca?: Buffer

  constructor(
    readonly reg: Pick<RegistryServer, 'url' | 'caFile' | 'username' | 'password'>,
    readonly repository: string,
    readonly actions = 'pull,push',
  ) {
    this.ca = reg.caFile ? readFileSync(reg.caFile) : undefined
  }

  async request(
    method: string,
    pathOrUrl: string,
    opts: {headers?: Record<string, string>; body?: Buffer} = {},
  ): Promise<HarnessResponse> {
    const url = new URL(pathOrUrl, this.reg.url).toString()
    const send = () =>
      harnessRequest(url, {
        method,
        body: opts.body,
        ca: this.ca,
        headers: {...opts.headers, ...(this.authorization ? {authorization: this.authorization} : {})},
      })
    let res = await send()
    if (res.status === 401) {
      const challenge = res.headers['www-authenticate']
      await this.authenticate(Array.isArray(challenge) ? challenge[0] : (challenge ?? ''))
      res = await send()
    }
    return res
  }

  private async authenticate(header: string): Promise<void> {
    const {username, password} = this.reg
    if (username === undefined || password === undefined)
      throw new Error(`registry ${this.reg.url} asks for credentials (${header}) and none are set`)
    const basic = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
    const {scheme, params} = parseChallenge(header)
    if (scheme === 'basic') {
      this.authorization = basic
      return
    }
    if (scheme !== 'bearer' || !params.realm) throw new Error(`unsupported challenge: ${header}`)
    const u = new URL(params.realm)
    if (params.service) u.searchParams.set('service', params.service)
    u.searchParams.append('scope', `repository:${this.repository}:${this.actions}`)
    const res = await harnessRequest(u.toString(), {headers: {authorization: basic}, ca: this.ca})
    if (res.status !== 200) throw new Error(`token endpoint ${params.realm}: ${res.status} ${res.body.toString()}`)
    const body = JSON.parse(res.body.toString()) as {token?: string; access_token?: string}
    this.authorization = `Bearer ${body.token ?? body.access_token}`
  }

  private expect(res: HarnessResponse, what: string, ...ok: number[]): void {
    if (!ok.includes(res.status))
      throw new Error(`${what} in ${this.repository}: HTTP ${res.status} ${res.body.toString().slice(0, 500)}`)
  }

  async hasBlob(digest: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v2/${this.repository}/blobs/${digest}`)
    return res.status === 200
  }

  /** Uploads a blob (POST then one PUT) unless the repository already has it. */
  async pushBlob(blob: {digest: string; data: Buffer}): Promise<void> {
    if (await this.hasBlob(blob.digest)) return
    const start = await this.request('POST', `/v2/${this.repository}/blobs/uploads/`, {
      headers: {'content-length': '0'},
    })
    this.expect(start, `start upload of ${blob.digest}`, 202)
    const location = new URL(String(start.headers.location), this.reg.url)
    location.searchParams.set('digest', blob.digest)
    const put = await this.request('PUT', location.toString(), {
      body: blob.data,
      headers: {'content-type': 'application/octet-stream'},
    })
    this.expect(put, `upload of ${blob.digest}`, 201)
  }

  async putManifest(reference: string, mediaType: string, bytes: Buffer): Promise<void> {
    const res = await this.request('PUT', `/v2/${this.repository}/manifests/${reference}`, {
      body: bytes,
      headers: {'content-type': mediaType},
    })
    this.expect(res, `manifest ${reference}`, 201)
  }

  async getManifest(
    reference: string,
    accept: string[] = Object.values(MEDIA).filter((m) => /manifest|index/.test(m)),
  ): Promise<HarnessResponse> {
    return this.request('GET', `/v2/${this.repository}/manifests/${reference}`, {headers: {accept: accept.join(', ')}})
  }
}

async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  const workers = Array.from({length: Math.min(limit, items.length)}, async () => {
    while (next < items.length) await fn(items[next++])
  })
  await Promise.all(workers)
}

export interface PushImageOpts {
  repository: string
  tag: string
  format?: 'oci' | 'docker'
  /** More than one gives an index (OCI) or a manifest list (Docker). Default [linux/amd64]. */
  platforms?: string[]
  /** Random layers per platform on top of baseLayers. Default 1. */
  layers?: number
  /** Size of each random layer. Default 16 KiB. */
  layerSize?: number
  /** Layers shared with other images, at the bottom of every platform's manifest. */
  baseLayers?: Blob[]
  /** Push an index/manifest list even for a single platform. */
  index?: boolean
}

/** Builds a random (multi-arch) image and pushes it as repository:tag. */
export async function pushImage(
  reg: Pick<RegistryServer, 'url' | 'caFile' | 'username' | 'password'>,
  opts: PushImageOpts,
): Promise<PushedImage> {
  const docker = opts.format === 'docker'
  const platforms = opts.platforms?.length ? opts.platforms : ['linux/amd64']
  const session = new RegistrySession(reg, opts.repository)
  const layerType = docker ? MEDIA.dockerLayer : MEDIA.ociLayer
  const blobs = new Map<string, Blob>()
  const children: NonNullable<PushedImage['children']> = []

  for (const platform of platforms) {
    const layers = [
      ...(opts.baseLayers ?? []),
      ...Array.from({length: opts.layers ?? 1}, () => randomLayer(opts.layerSize ?? 16 * 1024)),
    ]
    const config = {
      created: '2024-01-01T00:00:00Z',
      ...parsePlatform(platform),
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Labels: {'org.example.random': randomBytes(8).toString('hex')},
      },
      rootfs: {type: 'layers', diff_ids: layers.map(diffIdOf)},
      history: layers.map(() => ({created: '2024-01-01T00:00:00Z', created_by: 'airlock test harness'})),
    }
    const configData = Buffer.from(JSON.stringify(config))
    const configBlob: Blob = {
      digest: sha256(configData),
      size: configData.length,
      mediaType: docker ? MEDIA.dockerConfig : MEDIA.ociConfig,
      data: configData,
    }
    const layerBlobs = layers.map((l) => ({...l, mediaType: layerType}))
    for (const b of [configBlob, ...layerBlobs]) if (!blobs.has(b.digest)) blobs.set(b.digest, b)
    const mediaType = docker ? MEDIA.dockerManifest : MEDIA.ociManifest
    const manifest = {
      schemaVersion: 2,
      mediaType,
      config: {mediaType: configBlob.mediaType, digest: configBlob.digest, size: configBlob.size},
      layers: layerBlobs.map((l) => ({mediaType: l.mediaType, digest: l.digest, size: l.size})),
    }
    const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2))
    children.push({platform, digest: sha256(manifestBytes), mediaType, manifestBytes})
  }

  await inParallel([...blobs.values()], 4, (b) => session.pushBlob(b))
  const multi = platforms.length > 1 || opts.index === true
  let top: {mediaType: string; manifestBytes: Buffer}
  if (multi) {
    for (const c of children) await session.putManifest(c.digest, c.mediaType, c.manifestBytes)
    const mediaType = docker ? MEDIA.dockerList : MEDIA.ociIndex
    const index = {
      schemaVersion: 2,
      mediaType,
      manifests: children.map((c) => ({
        mediaType: c.mediaType,
        digest: c.digest,
        size: c.manifestBytes.length,
        platform: parsePlatform(c.platform),
      })),
    }
    top = {mediaType, manifestBytes: Buffer.from(JSON.stringify(index, null, 2))}
  } else {
    top = children[0]
  }
  await session.putManifest(opts.tag, top.mediaType, top.manifestBytes)
  return {
    ref: `${new URL(reg.url).host}/${opts.repository}:${opts.tag}`,
    repository: opts.repository,
    tag: opts.tag,
    digest: sha256(top.manifestBytes),
    mediaType: top.mediaType,
    platforms,
    manifestBytes: top.manifestBytes,
    blobs: [...blobs.values()],
    ...(multi ? {children} : {}),
  }
}
