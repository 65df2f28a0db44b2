import pLimit from 'p-limit'
import {Readable} from 'node:stream'

import {inFlight} from '../defaults.js'

import type {BundleLock, LockImage, LockReferrer} from '../lock.js'
import type {Opener} from '../content/opener.js'
import type {BlobPutOptions, BlobPutResult, ImageSink, ImageSource, ManifestPutOptions} from '../content/roles.js'
import {BlobQueue, Copier} from '../copy.js'
import {BundleError, combineFailures, IntegrityError} from '../errors.js'
import {ArchiveImageSource, OciArchive} from '../oci/archive.js'
import {CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION} from '../oci/layout.js'
import type {Descriptor} from '../content/descriptor.js'
import {manifestMediaType, MediaType} from '../content/media-types.js'
import {RegistryClient} from '../registry/client.js'
import type {Credentials} from '../registry/credentials.js'
import {type BlobBody, type BlobReader, RegistryPusher} from '../registry/push.js'
import {hasReferrersApi, referrersTag} from '../registry/referrers.js'
import {formatBytes} from '../ui/format.js'
import type {Progress} from '../ui/progress.js'
import {writePushedMirrorConfig} from '../mirror-config/mirror-config.js'
import {refuseIncompleteTarget} from './delta-check.js'
import {checkDeltaTarget, DeltaImageSource, RegistryHolds} from './registry-holds.js'
import {checkTargetOptions, type ImageTarget, planTargets, type TargetOptions} from './registry-target.js'

/**
 * `import registry`: every image of a bundle's oci-archive, read in place,
 * pushed into a registry through the one copy routine. The archive is the
 * source; a RegistrySink per target repository is the sink; all sinks share
 * one pusher (one client, one token cache) and one record of which
 * repository already holds which blob, so that a blob is uploaded once per
 * run and mounted into every other repository that needs it.
 */

/** The target registry, as `registryTargetFlags` name it: every push to a registry (`import registry`, `mirror`) takes these. */
export interface RegistryTargetOptions extends TargetOptions {
  credentials?: Credentials
  caFiles?: string[]
  /** Plain HTTP and unverified TLS for the target. */
  insecure?: boolean
}

/**
 * The client of the target registry (`registry` as checkTargetOptions left
 * it), with one warning when --insecure lets plain HTTP and unverified TLS in.
 */
export function targetClient(registry: string, opts: RegistryTargetOptions, progress: Progress, signal?: AbortSignal): RegistryClient {
  if (opts.insecure) progress.warn(`--insecure: plain HTTP and unverified TLS allowed for ${registry}`)
  return new RegistryClient({registry, insecure: opts.insecure, caFiles: opts.caFiles, credentials: opts.credentials, signal})
}

export interface RegistryImportOptions extends RegistryTargetOptions {
  concurrency?: number
  /** Print the mapping, push nothing (the bundle is still verified). */
  dryRun?: boolean
  progress?: Progress
  /** Bytes per PATCH chunk for large blobs (tests make it small). */
  chunkSize?: number
  /** `--mirror-config DIR`: write the nodes' mirror configuration there after the push. */
  mirrorConfig?: string
}

/** One row of the mapping, and of `--json`. */
export interface ImportedImage {
  source: string
  target: string
  digest: string
  /** How many referrers (signatures, SBOMs...) the bundle carries for it, pushed with it. */
  referrers: number
}

export interface PushStats {
  /** Blobs sent over the wire, mounted from another repository, or found already there. */
  uploaded: number
  mounted: number
  present: number
  bytesUploaded: number
  manifestsPushed: number
}

/** What every push to a registry reports (`import registry`, `mirror`): its result's counts. */
export type PushCounts = {
  images: number
  /** Signatures, attestations, SBOMs pushed with the images. */
  referrers: number
  blobsUploaded: number
  blobsMounted: number
  blobsPresent: number
  bytesUploaded: number
  manifestsPushed: number
}

export function pushCounts(images: number, referrers: number, st: PushStats): PushCounts {
  return {images, referrers, blobsUploaded: st.uploaded, blobsMounted: st.mounted, blobsPresent: st.present, bytesUploaded: st.bytesUploaded, manifestsPushed: st.manifestsPushed}
}

/** The `total:` line of a push; `verb` is what a dry run would have done (`pushed`, `copied`). */
export function pushTotalLine(registry: string, c: PushCounts, dryRun: boolean, verb: string): string {
  return dryRun
    ? `total: ${c.images} image(s) would be ${verb} to ${registry} (dry run: nothing was ${verb})`
    : `total: ${c.images} image(s)${c.referrers > 0 ? ` and ${c.referrers} referrer(s)` : ''} in ${registry}: ${c.blobsUploaded} blob(s) uploaded (${formatBytes(c.bytesUploaded)}), ${c.blobsMounted} mounted, ${c.blobsPresent} already there; ${c.manifestsPushed} manifest(s) pushed`
}

export interface RegistryImportResult {
  images: ImportedImage[]
  stats: PushStats
  /** The files `--mirror-config` wrote. */
  mirrorConfig?: string[]
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
  /** Uploads under way, by digest: gone once settled (thousands of blobs would keep a promise each), `holders` answers after. */
  private readonly claims = new Map<string, Claim>()

  constructor(readonly pusher: RegistryPusher) {}

  /** Blobs known (from a delta's check) to be in a repository, to mount from. */
  seed(holders: Map<string, string>): void {
    for (const [digest, repository] of holders) this.held(digest, repository)
  }

  private held(digest: string, repository: string): void {
    if (!this.holders.has(digest)) this.holders.set(digest, repository)
  }

  /** True when `repository` has the blob, found there or mounted into it now. */
  async has(repository: string, desc: Descriptor): Promise<boolean> {
    const known = this.holders.get(desc.digest)
    if (known === repository) {
      this.stats.present++
      return true
    }
    // Held by another repository already: mount at once, no HEAD first (a mount answers 201 as well when the blob is here).
    const mountFirst = known !== undefined && !this.claims.has(desc.digest)
    if (mountFirst && (await this.mount(repository, desc.digest, known))) return true
    if (await this.pusher.hasBlob(repository, desc.digest, desc.size)) {
      this.held(desc.digest, repository)
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
  async put(repository: string, desc: Descriptor, read: BlobBody, onBytes?: (n: number) => void): Promise<BlobPutResult> {
    const claim = this.claims.get(desc.digest)
    const mine = claim?.repository === repository
    try {
      const from = this.holders.get(desc.digest)
      const outcome = await this.pusher.pushBlob(repository, desc, read, from === repository ? undefined : from, onBytes)
      this.held(desc.digest, repository)
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
    if (digest !== desc.digest) throw new IntegrityError(`manifest ${this.repository}:${reference}`, desc.digest, digest)
    this.run.stats.manifestsPushed++
  }
}

/**
 * The type a root is pushed as. index.json lists Docker content under the OCI
 * type of the same shape (so that skopeo resolves it); the real type is the
 * document's own `mediaType`, or bundle.json's, and a registry checks the
 * Content-Type against the document.
 */
function rootMediaType(bytes: Buffer, p: PlannedImage): string {
  try {
    const own = (JSON.parse(bytes.toString('utf8')) as {mediaType?: unknown}).mediaType
    if (typeof own === 'string' && own !== '') return own
  } catch {
    // not JSON: the copy reports that
  }
  return p.lock.mediaType || p.desc.mediaType
}

interface PlannedImage {
  lock: LockImage
  desc: Descriptor
  target: ImageTarget
}

/** Find each bundle.json image in the archive's index.json (by its ref annotation, else by digest), and its target. */
function planImages(lockImages: LockImage[], manifests: Descriptor[], opts: RegistryImportOptions, path: string): PlannedImage[] {
  // Looked up by name, then by digest, the first entry of each winning (as a scan in order would find it).
  const byName = new Map<string, Descriptor>()
  const byDigest = new Map<string, Descriptor>()
  for (const m of manifests) {
    for (const name of [m.annotations?.[REF_NAME_ANNOTATION], m.annotations?.[CONTAINERD_NAME_ANNOTATION]]) if (name !== undefined && !byName.has(name)) byName.set(name, m)
    if (!byDigest.has(m.digest)) byDigest.set(m.digest, m)
  }
  // Every target first: a collision is refused before the first push.
  const targets = planTargets(lockImages, opts)
  return lockImages.map((img, n) => {
    const desc = byName.get(img.ref) ?? byDigest.get(img.digest)
    if (!desc) throw new BundleError(`${path}: ${img.ref} is in bundle.json but not in the archive's index.json`)
    if (desc.digest !== img.digest) throw new IntegrityError(`${img.ref} in ${path}`, img.digest, desc.digest)
    // The entry's names are the image's ref, in bundle.json already: not kept twice more per image.
    return {lock: img, desc: {mediaType: desc.mediaType, digest: desc.digest, size: desc.size}, target: targets[n]}
  })
}

/** Push the images of an indexed oci-archive (already verified) to their targets. */
export async function pushArchive(
  archive: OciArchive,
  lockImages: LockImage[],
  opts: RegistryImportOptions & {concurrency: number; progress: Progress},
  /** A delta's lock: what it leaves out is checked in the target first, then found or mounted there. */
  delta?: BundleLock,
): Promise<RegistryImportResult> {
  opts = {...opts, ...checkTargetOptions(opts)}
  const {progress, concurrency} = opts
  const index = await archive.readIndex()
  const planned = planImages(lockImages, index.manifests, opts, archive.path)
  const images = planned.map((p) => ({source: p.lock.ref, target: p.target.ref, digest: p.lock.digest, referrers: p.lock.referrers?.length ?? 0}))
  const stats: PushStats = {uploaded: 0, mounted: 0, present: 0, bytesUploaded: 0, manifestsPushed: 0}
  if (opts.dryRun || planned.length === 0) return {images, stats}
  const client = targetClient(opts.registry, opts, progress)
  const run = new PushRun(new RegistryPusher(client, {chunkSize: opts.chunkSize}))
  const pool = pLimit(concurrency)
  // One queue for every repository's Copier: the largest blob waiting goes first, whichever image it is of.
  const queue = new BlobQueue(pool, concurrency)
  const archiveSource = new ArchiveImageSource(archive)
  // Fail on a bad address or bad credentials once, before any image starts.
  await client.request({path: '/v2/', what: 'the API version check (GET /v2/)'})
  if (delta) {
    const {missing, holders} = await checkDeltaTarget(
      archive,
      delta,
      planned.map((p) => ({ref: p.lock.ref, root: p.desc, repository: p.target.repository, size: p.lock.size})),
      new RegistryHolds(client, concurrency),
    )
    refuseIncompleteTarget(`registry ${opts.registry}`, delta, missing)
    run.seed(holders)
  }
  const sourceFor = (repository: string): ImageSource => (delta ? new DeltaImageSource(archiveSource, client, repository) : archiveSource)
  // A Copier per target repository: copy's "each digest once" is then exactly
  // "once per repository"; the pool, the client and the mount record are shared.
  // A repository's Copier goes once its last image is done, so a run of
  // thousands of repositories holds the copiers of the images in flight only.
  const left = new Map<string, number>()
  for (const p of planned) left.set(p.target.repository, (left.get(p.target.repository) ?? 0) + 1)
  const copiers = new Map<string, Copier>()
  const copierFor = (repository: string): Copier => {
    let c = copiers.get(repository)
    if (!c) {
      c = new Copier({sink: new RegistrySink(run, repository), pool, queue, concurrency})
      copiers.set(repository, c)
    }
    return c
  }
  const release = (repository: string): void => {
    const n = left.get(repository)! - 1
    left.set(repository, n)
    if (n === 0) copiers.delete(repository)
  }
  // A bounded number of images at once: each holds its manifests and a progress row only while it runs.
  const inflight = pLimit(inFlight(concurrency))
  const results = await Promise.allSettled(
    planned.map((p) => inflight(async () => {
      const task = progress.task(`${p.lock.ref} -> ${p.target.ref}`, p.lock.size)
      try {
        const source = sourceFor(p.target.repository)
        const bytes = await source.fetchManifest(p.desc)
        const copier = copierFor(p.target.repository)
        await copier.copyImage({
          source,
          root: {bytes, mediaType: rootMediaType(bytes, p), digest: p.desc.digest},
          refs: [p.target.reference],
          label: p.lock.ref,
          onPlan: (plan) => task.setTotal(plan.totalBytes),
          onBytes: (n) => task.advance(n),
        })
        // Referrers after the image, each after its subject (bundle.json lists them in that order); cosign's keep their tags.
        for (const r of p.lock.referrers ?? []) {
          const rb = await archive.readBlob(r.digest)
          await copier.copyImage({source, root: {bytes: rb, mediaType: r.mediaType, digest: r.digest}, refs: r.tag ? [r.tag] : [], label: `${p.lock.ref} referrer ${r.digest}`})
        }
        await pushReferrersTags(client, run, p.target.repository, p.lock.referrers ?? [], (digest) => archive.readBlob(digest))
        task.done()
      } catch (err) {
        task.fail(err instanceof Error ? err.message : String(err))
        throw err
      } finally {
        release(p.target.repository)
      }
    })),
  )
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed.length > 0) throw combineFailures(failed.map((r) => r.reason as unknown), 'images')
  if (opts.mirrorConfig === undefined) return {images, stats: run.stats}
  const target = {url: await client.base(), insecure: opts.insecure, caFiles: opts.caFiles}
  const mirrorConfig = await writePushedMirrorConfig(opts.mirrorConfig, planned.map((p) => p.target), target, 'airlock import registry', (m) => progress.warn(m))
  return {images, stats: run.stats, mirrorConfig}
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
        annotations = (JSON.parse((await read(r.digest)).toString('utf8')) as {annotations?: Record<string, string>}).annotations
      } catch {
        annotations = undefined
      }
      manifests.push({mediaType: r.mediaType, digest: r.digest, size: r.size, artifactType: r.artifactType, ...(annotations ? {annotations} : {})})
    }
    if (manifests.length === existing.length) continue
    const bytes = Buffer.from(JSON.stringify({schemaVersion: 2, mediaType: MediaType.ociIndex, manifests}))
    await run.pusher.putManifest(repository, referrersTag(subject), bytes, MediaType.ociIndex)
    run.stats.manifestsPushed++
  }
}
