import {Readable} from 'node:stream'

import type {LockReferrer} from '../../bundle-json.js'
import type {Descriptor} from '../../content/descriptor.js'
import {manifestMediaType, MediaType} from '../../content/media-types.js'
import type {Opener} from '../../content/opener.js'
import type {BlobPutOptions, BlobPutResult, ImageSink, ManifestPutOptions} from '../../content/roles.js'
import {BundleError, IntegrityError} from '../../errors.js'
import type {ConnectionOptions} from '../../fetch/tls.js'
import {RegistryClient} from '../../registry/client.js'
import type {Credentials} from '../../registry/credentials.js'
import {type BlobBody, type BlobReader, RegistryPusher} from '../../registry/push.js'
import {hasReferrersApi, referrersTag} from '../../registry/referrers.js'
import type {Progress} from '../../ui/progress.js'
import type {TargetOptions} from './registry-target.js'

/** The target registry, as `registryTargetFlags` name it: every push to a registry (`import registry`, `mirror`) takes these. */
export interface RegistryTargetOptions extends TargetOptions, ConnectionOptions {
  credentials?: Credentials
}

/**
 * The client of the target registry (`registry` as checkTargetOptions left
 * it), with one warning when --insecure lets plain HTTP and unverified TLS in.
 */
export function targetClient(
  registry: string,
  opts: RegistryTargetOptions,
  progress: Progress,
  signal?: AbortSignal,
): RegistryClient {
  if (opts.insecure) progress.warn(`--insecure: plain HTTP and unverified TLS allowed for ${registry}`)
  return new RegistryClient({
    registry,
    insecure: opts.insecure,
    caFiles: opts.caFiles,
    credentials: opts.credentials,
    signal,
  })
}

export interface PushStats {
  /** Blobs sent over the wire, mounted from another repository, or found already there. */
  uploaded: number
  mounted: number
  present: number
  bytesUploaded: number
  manifestsPushed: number
}

/** The repository that uploads a digest in this run, and when it is done. */
interface Claim {
  repository: string
  done: Promise<boolean>
  settle(ok: boolean): void
}

/**
 * What every RegistrySink of one run shares. The first repository that finds
 * a blob missing claims its upload; every other repository that needs it
 * waits for that upload before asking for a pool slot (so no slot idles
 * waiting), then mounts it from there. Only when the mount is declined or
 * the upload failed does a second repository upload it too.
 */
export class PushRun {
  readonly stats: PushStats = {uploaded: 0, mounted: 0, present: 0, bytesUploaded: 0, manifestsPushed: 0}
  /** Blob digest -> a repository of the target registry known to hold it (pushed, mounted or found). */
  private readonly holders = new Map<string, string>()
  /** Blob digest -> the size it was seen with (pushed, or checked by a HEAD): a descriptor of another size is not that blob. */
  private readonly sizes = new Map<string, number>()
  /** Uploads under way, by digest: gone once settled (thousands of blobs would keep a promise each), `holders` answers after. */
  private readonly claims = new Map<string, Claim>()

  constructor(readonly pusher: RegistryPusher) {}

  /** Blobs known (from a delta's check) to be in a repository, to mount from. */
  seed(holders: Map<string, string>): void {
    for (const [digest, repository] of holders) this.held(digest, repository)
  }

  private held(digest: string, repository: string, size?: number): void {
    if (!this.holders.has(digest)) this.holders.set(digest, repository)
    if (size !== undefined) this.sizes.set(digest, size)
  }

  /** True when `repository` has the blob, found there or mounted into it now. */
  async has(repository: string, desc: Descriptor): Promise<boolean> {
    // Known only with the size this descriptor names (a seeded holder has none: HEAD it).
    const known = this.sizes.get(desc.digest) === desc.size ? this.holders.get(desc.digest) : undefined
    if (known === repository) {
      this.stats.present++
      return true
    }
    // Held by another repository already: mount at once, no HEAD first (a mount answers 201 as well when the blob is here).
    const mountFirst = known !== undefined && !this.claims.has(desc.digest)
    if (mountFirst && (await this.mount(repository, desc.digest, known))) return true
    if (await this.pusher.hasBlob(repository, desc.digest, desc.size)) {
      this.held(desc.digest, repository, desc.size)
      this.stats.present++
      return true
    }
    const claim = this.claims.get(desc.digest)
    if (claim) {
      if (claim.repository === repository) return false
      await claim.done
    } else if (!this.holders.has(desc.digest)) {
      // Ours to upload: the Copier calls putBlob next, which settles the claim.
      let settle!: (ok: boolean) => void
      const done = new Promise<boolean>((resolve) => (settle = resolve))
      this.claims.set(desc.digest, {repository, done, settle})
      return false
    }
    // Uploaded (or found) in another repository already: mount it from there.
    const from = this.holders.get(desc.digest)
    if (!from || from === repository || (mountFirst && from === known)) return false
    return this.mount(repository, desc.digest, from)
  }

  /** Mount a blob from `from`; false when declined (then it is uploaded here too). */
  private async mount(repository: string, digest: string, from: string): Promise<boolean> {
    const res = await this.pusher.mountBlob(repository, digest, from)
    if (res?.status !== 201) return false
    this.held(digest, repository)
    this.stats.mounted++
    return true
  }

  /** Upload a blob into `repository` (mounting when another repository got it meanwhile). */
  async put(
    repository: string,
    desc: Descriptor,
    read: BlobBody,
    onBytes?: (n: number) => void,
  ): Promise<BlobPutResult> {
    const claim = this.claims.get(desc.digest)
    const mine = claim?.repository === repository
    try {
      const from = this.holders.get(desc.digest)
      const outcome = await this.pusher.pushBlob(
        repository,
        desc,
        read,
        from === repository ? undefined : from,
        onBytes,
      )
      this.held(desc.digest, repository, desc.size)
      if (mine) {
        // Settled: whoever waits has the promise; a later repository mounts from `holders` in its own put.
        this.claims.delete(desc.digest)
        claim.settle(true)
      }
      if (outcome === 'mounted') {
        this.stats.mounted++
        return {bytesFetched: 0, bytesResumed: 0}
      }
      this.stats.uploaded++
      this.stats.bytesUploaded += desc.size
      return {bytesFetched: desc.size, bytesResumed: 0}
    } catch (err) {
      if (mine) {
        // Waiting repositories upload it themselves; a later run may claim it again.
        this.claims.delete(desc.digest)
        claim.settle(false)
      }
      throw err
    }
  }
}

/** `length` bytes from `offset` of what an Opener serves, as a lazy stream (opened when first read). */
export function openerReader(open: Opener, label: string): BlobReader {
  return (offset, length) =>
    Readable.from(
      (async function* () {
        const {stream, start} = await open(offset)
        try {
          if (start !== offset) throw new BundleError(`${label}: cannot read from byte ${offset}`)
          let left = length
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            if (chunk.length >= left) {
              yield chunk.subarray(0, left)
              left = 0
              break
            }
            left -= chunk.length
            yield chunk
          }
          if (left > 0) throw new BundleError(`${label}: ended ${left} bytes early`)
        } finally {
          stream.destroy()
        }
      })(),
      {objectMode: false},
    )
}

/**
 * What a blob is sent from: its bytes when the source has them in hand at
 * once (a small blob of an archive, read whole: no stream, no file opened
 * per blob), else a lazy reader.
 */
async function blobBody(desc: Descriptor, open: Opener, label: string): Promise<BlobBody> {
  if (desc.size > WHOLE_MAX) return openerReader(open, label)
  const first = await open(0)
  if (first.bytes && first.start === 0 && first.bytes.length === desc.size) return first.bytes
  first.stream.destroy()
  return openerReader(open, label)
}

/** Blobs up to this size are sent from memory when the source offers their bytes. */
const WHOLE_MAX = 1 << 20

/** One target repository as a copy sink. */
export class RegistrySink implements ImageSink {
  constructor(
    private readonly run: PushRun,
    readonly repository: string,
  ) {}

  hasBlob(desc: Descriptor): Promise<boolean> {
    return this.run.has(this.repository, desc)
  }

  async putBlob(desc: Descriptor, open: Opener, opts: BlobPutOptions): Promise<BlobPutResult> {
    return this.run.put(this.repository, desc, await blobBody(desc, open, opts.label), opts.onBytes)
  }

  async hasManifest(desc: Descriptor): Promise<boolean> {
    return (await this.run.pusher.manifestDigest(this.repository, desc.digest)) === desc.digest
  }

  async putManifest(desc: Descriptor, bytes: Buffer, opts: ManifestPutOptions = {}): Promise<void> {
    // Fresh: a blob under it was missing here a moment ago, so it cannot be here; no HEAD.
    if (!opts.fresh && (await this.hasManifest(desc))) return
    await this.push(desc.digest, desc, bytes)
  }

  async tag(ref: string, desc: Descriptor, bytes: Buffer, opts: ManifestPutOptions = {}): Promise<void> {
    if (ref.startsWith('sha256:')) return // pushed by digest already, in putManifest
    // A root just pushed cannot be what the tag names already.
    if (!opts.fresh && (await this.run.pusher.manifestDigest(this.repository, ref)) === desc.digest) return
    await this.push(ref, desc, bytes)
  }

  private async push(reference: string, desc: Descriptor, bytes: Buffer): Promise<void> {
    const mediaType = desc.mediaType || manifestMediaType(bytes)
    const digest = await this.run.pusher.putManifest(this.repository, reference, bytes, mediaType)
    if (digest !== desc.digest)
      throw new IntegrityError(`manifest ${this.repository}:${reference}`, desc.digest, digest)
    this.run.stats.manifestsPushed++
  }
}

/**
 * Where the target has no referrers API (distribution 2.8 has none), the
 * referrers tag schema's index (`sha256-<hex of subject>`) of every
 * referrer with a `subject` field, merged with the one already there, so
 * that clients find them as they would through the API. cosign's tag-based
 * artifacts are found by their own tags and are not listed. `read` gives a
 * referrer's manifest bytes (for its annotations), wherever they come from.
 */
export async function pushReferrersTags(
  client: RegistryClient,
  run: PushRun,
  repository: string,
  referrers: LockReferrer[],
  read: (digest: string) => Promise<Buffer>,
): Promise<void> {
  const bySubject = new Map<string, LockReferrer[]>()
  for (const r of referrers) if (!r.tag) bySubject.set(r.subject, [...(bySubject.get(r.subject) ?? []), r])
  for (const [subject, list] of bySubject) {
    if (await hasReferrersApi(client, repository, subject)) continue
    const existing = await client.referrers(repository, subject)
    const manifests: Descriptor[] = [...existing]
    for (const r of list) {
      if (manifests.some((m) => m.digest === r.digest)) continue
      let annotations: Record<string, string> | undefined
      try {
        annotations = (JSON.parse((await read(r.digest)).toString('utf8')) as {annotations?: Record<string, string>})
          .annotations
      } catch {
        annotations = undefined
      }
      manifests.push({
        mediaType: r.mediaType,
        digest: r.digest,
        size: r.size,
        artifactType: r.artifactType,
        ...(annotations ? {annotations} : {}),
      })
    }
    if (manifests.length === existing.length) continue
    const bytes = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociIndex, manifests}))
    await run.pusher.putManifest(repository, referrersTag(subject), bytes, MediaType.ociIndex)
    run.stats.manifestsPushed++
  }
}
