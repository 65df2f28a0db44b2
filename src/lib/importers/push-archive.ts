import pLimit from 'p-limit'

import type {BundleLock, LockImage} from '../bundle-json.js'
import type {Descriptor} from '../content/descriptor.js'
import type {ImageSource} from '../content/roles.js'
import {BlobQueue, Copier} from '../copy.js'
import {inFlight} from '../defaults.js'
import {BundleError, combineFailures, IntegrityError} from '../errors.js'
import {writePushedMirrorConfig} from '../mirror-config/mirror-config.js'
import {ArchiveImageSource, OciArchive} from '../oci/archive.js'
import {CONTAINERD_NAME_ANNOTATION, REF_NAME_ANNOTATION} from '../oci/layout.js'
import {RegistryPusher} from '../registry/push.js'
import {checkDeltaTarget, DeltaImageSource, RegistryHolds} from '../targets/registry/registry-holds.js'
import {
  pushReferrersTags,
  PushRun,
  type PushStats,
  RegistrySink,
  type RegistryTargetOptions,
  targetClient,
} from '../targets/registry/registry-sink.js'
import {checkTargetOptions, type ImageTarget, planTargets} from '../targets/registry/registry-target.js'
import type {Progress} from '../ui/progress.js'
import {refuseIncompleteTarget} from './delta-check.js'

/**
 * `import registry`: every image of a bundle's oci-archive, read in place,
 * pushed into a registry through the one copy routine. The archive is the
 * source; a RegistrySink per target repository is the sink; all sinks share
 * one pusher (one client, one token cache) and one record of which
 * repository already holds which blob, so that a blob is uploaded once per
 * run and mounted into every other repository that needs it.
 */

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

export interface RegistryImportResult {
  images: ImportedImage[]
  stats: PushStats
  /** The files `--mirror-config` wrote. */
  mirrorConfig?: string[]
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
function findImagesInArchive(
  lockImages: LockImage[],
  manifests: Descriptor[],
  opts: RegistryImportOptions,
  path: string,
): PlannedImage[] {
  // Looked up by name, then by digest, the first entry of each winning (as a scan in order would find it).
  const byName = new Map<string, Descriptor>()
  const byDigest = new Map<string, Descriptor>()
  for (const m of manifests) {
    for (const name of [m.annotations?.[REF_NAME_ANNOTATION], m.annotations?.[CONTAINERD_NAME_ANNOTATION]])
      if (name !== undefined && !byName.has(name)) byName.set(name, m)
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
  const planned = findImagesInArchive(lockImages, index.manifests, opts, archive.path)
  const images = planned.map((p) => ({
    source: p.lock.ref,
    target: p.target.ref,
    digest: p.lock.digest,
    referrers: p.lock.referrers?.length ?? 0,
  }))
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
  const sourceFor = (repository: string): ImageSource =>
    delta ? new DeltaImageSource(archiveSource, client, repository) : archiveSource
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
    planned.map((p) =>
      inflight(async () => {
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
            await copier.copyImage({
              source,
              root: {bytes: rb, mediaType: r.mediaType, digest: r.digest},
              refs: r.tag ? [r.tag] : [],
              label: `${p.lock.ref} referrer ${r.digest}`,
            })
          }
          await pushReferrersTags(client, run, p.target.repository, p.lock.referrers ?? [], (digest) =>
            archive.readBlob(digest),
          )
          task.done()
        } catch (err) {
          task.fail(err instanceof Error ? err.message : String(err))
          throw err
        } finally {
          release(p.target.repository)
        }
      }),
    ),
  )
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed.length > 0)
    throw combineFailures(
      failed.map((r) => r.reason as unknown),
      'images',
    )
  if (opts.mirrorConfig === undefined) return {images, stats: run.stats}
  const target = {url: await client.base(), insecure: opts.insecure, caFiles: opts.caFiles}
  const mirrorConfig = await writePushedMirrorConfig(
    opts.mirrorConfig,
    planned.map((p) => p.target),
    target,
    'airlock import registry',
    (m) => progress.warn(m),
  )
  return {images, stats: run.stats, mirrorConfig}
}
