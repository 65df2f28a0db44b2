import pLimit from 'p-limit'

import type {LockReferrer} from '../bundle-json.js'
import type {Descriptor} from '../content/descriptor.js'
import {BlobQueue, Copier} from '../copy.js'
import {UsageError} from '../errors.js'
import type {ImageEntry, Manifest} from '../manifest/types.js'
import {writePushedMirrorConfig} from '../mirror-config/mirror-config.js'
import {chooseRoot} from '../oci/choose-root.js'
import {pullReferrers, referrerSubjects} from '../pull/referrers.js'
import {RegistryClient} from '../registry/client.js'
import {RegistryPusher} from '../registry/push.js'
import {RegistrySource} from '../registry/source.js'
import {sourceClients} from '../select/clients.js'
import {type RepositoriesReport, resolveManifest, type SelectionReport} from '../select/resolve.js'
import {
  pushReferrersTags,
  PushRun,
  type PushStats,
  RegistrySink,
  type RegistryTargetOptions,
  targetClient,
} from '../targets/registry/registry-sink.js'
import {checkTargetOptions, type ImageTarget, planTargets} from '../targets/registry/registry-target.js'
import {formatBytes, shortDigest} from '../ui/format.js'
import type {Progress} from '../ui/progress.js'

/**
 * `airlock mirror`: the manifest's images straight from their registries to
 * a target registry, through the one copier, with no store: manifests are
 * held in memory, blobs stream from the source GET into the target upload.
 * The target side is `import registry`'s: the same naming (namespace, the
 * source host dropped or kept), the same sink (HEAD-skip, cross-repository
 * mounts, chunked uploads), auth and TLS. Digests stay byte for byte; the
 * target registry checks every blob's digest before it keeps it. Referrers
 * come as `pull` finds them (`spec.referrers` narrows them) and go as
 * `import registry` pushes them: after their subjects, cosign's tags kept,
 * the referrers tag schema's index where the target has no referrers API.
 */
/** `credentials` are the target's (sources use the Docker config); `caFiles` are trusted for the target and every source. */
export interface MirrorOptions extends RegistryTargetOptions {
  concurrency: number
  /** `--platform`: overrides the manifest's platforms. */
  platforms?: string[]
  /** Resolve and print the mapping; copy nothing. */
  dryRun?: boolean
  progress: Progress
  signal?: AbortSignal
  /** Bytes per PATCH chunk for large blobs (tests make it small). */
  chunkSize?: number
  /** `--mirror-config DIR`: write the nodes' mirror configuration there after the copy. */
  mirrorConfig?: string
}

export interface MirroredImage {
  source: string
  target: string
  /** The digest pushed (a platform-filtered index has its own; `sourceDigest` is the registry's). */
  digest: string
  platforms: string[]
  sourceDigest?: string
  /** Signatures, attestations, SBOMs copied with the image, as `bundle.json` lists them (absent when none). */
  referrers?: LockReferrer[]
}

export interface MirrorResult {
  images: MirroredImage[]
  stats: PushStats
  selections?: SelectionReport[]
  repositories?: RepositoriesReport[]
  /** The files `--mirror-config` wrote. */
  mirrorConfig?: string[]
}

export async function mirror(given: Manifest, opts: MirrorOptions): Promise<MirrorResult> {
  const target = checkTargetOptions(opts)
  const {progress} = opts
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1)
    throw new UsageError(`--concurrency must be a positive whole number, got ${opts.concurrency}`)
  const sources = sourceClients(given, {caFiles: opts.caFiles, signal: opts.signal, onWarning: (m) => progress.warn(m)})
  const {manifest, resolution} = await resolveManifest(given, {registry: sources.lister})
  const report = resolution ? {selections: resolution.selections, repositories: resolution.repositories} : {}
  const planned = plan(manifest.images, target)
  const stats: PushStats = {uploaded: 0, mounted: 0, present: 0, bytesUploaded: 0, manifestsPushed: 0}
  if (opts.dryRun || planned.length === 0) {
    return {
      images: planned.map((p) => ({
        source: p.entry.name,
        target: p.target.ref,
        digest: p.entry.ref.digest ?? '',
        platforms: [],
      })),
      stats,
      ...report,
    }
  }
  const client = targetClient(target.registry, opts, progress, opts.signal)
  const run = new PushRun(new RegistryPusher(client, {chunkSize: opts.chunkSize}))
  const pool = pLimit(opts.concurrency)
  // One queue for every repository's Copier: the largest blob waiting goes first, whichever image it is of.
  const queue = new BlobQueue(pool, opts.concurrency)
  // A Copier per target repository, as import registry does: "each digest once" is then
  // "once per repository"; the pool, the client and the record of mounts are shared.
  const copiers = new Map<string, Copier>()
  const copierFor = (repository: string): Copier => {
    let c = copiers.get(repository)
    if (!c) {
      c = new Copier({sink: new RegistrySink(run, repository), pool, queue, concurrency: opts.concurrency})
      copiers.set(repository, c)
    }
    return c
  }
  // Fail on a bad address or bad credentials once, before any image starts.
  await client.request({path: '/v2/', what: 'the API version check (GET /v2/)'})
  const wanted = (e: ImageEntry) => (opts.platforms && opts.platforms.length > 0 ? opts.platforms : e.platforms)
  const results = await Promise.allSettled(
    planned.map(async ({entry, target: t}): Promise<MirroredImage> => {
      const task = progress.task(`${entry.name} -> ${t.ref}`)
      try {
        const src = sources.client(entry.ref.registry)
        const repo = entry.ref.repository
        const fetched = await src.getManifest(repo, entry.ref.digest ?? entry.ref.tag ?? 'latest')
        const chosen = await chooseRoot(entry.name, fetched, wanted(entry), entry.ref, {
          config: (d) => readConfig(src, repo, d),
          warn: (m) => progress.warn(m),
        })
        let total = 0
        const source = new RegistrySource(src, repo)
        const copier = copierFor(t.repository)
        const r = await copier.copyImage({
          source,
          root: chosen.root,
          refs: [t.source.tag ?? chosen.root.digest],
          label: entry.name,
          onPlan: (p) => {
            total = p.totalBytes
            task.setTotal(p.totalBytes)
          },
          onBytes: (n) => task.advance(n),
        })
        const manifests = new Map<string, Buffer>()
        const referrers = await pullReferrers({
          client: src,
          repository: repo,
          source,
          copier,
          tagInSink: true,
          record: async (e, bytes) => void manifests.set(e.digest, bytes),
          subjects: referrerSubjects(fetched.digest, r, chosen.sourceDigest),
          selection: manifest.referrers ?? 'all',
          image: entry.name,
          replaced: chosen.sourceDigest,
          warn: (m) => progress.warn(m),
        })
        await pushReferrersTags(client, run, t.repository, referrers, async (d) => manifests.get(d)!)
        task.done(
          `${shortDigest(r.digest)} ${chosen.platforms.join(', ') || 'no platform'} ${formatBytes(total)}` +
            (referrers.length > 0 ? `, ${referrers.length} referrer${referrers.length === 1 ? '' : 's'}` : ''),
        )
        return {
          source: entry.name,
          target: t.ref,
          digest: r.digest,
          platforms: chosen.platforms,
          ...(chosen.sourceDigest ? {sourceDigest: chosen.sourceDigest} : {}),
          ...(referrers.length > 0 ? {referrers} : {}),
        }
      } catch (err) {
        task.fail(err instanceof Error ? err.message : String(err))
        throw err
      }
    }),
  )
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed.length > 0) {
    const first = failed[0].reason
    if (first instanceof Error && 'details' in first && Array.isArray(first.details)) {
      first.details.push(...failed.slice(1).map((f) => `also: ${(f.reason as Error).message}`))
      if (failed.length > 1)
        first.details.push('run the mirror again to finish them: what is in the target already is skipped')
    }
    throw first
  }
  const images = results.map((r) => (r as PromiseFulfilledResult<MirroredImage>).value)
  if (opts.mirrorConfig === undefined) return {images, stats: run.stats, ...report}
  const pushed = {url: await client.base(), insecure: opts.insecure, caFiles: opts.caFiles}
  const mirrorConfig = await writePushedMirrorConfig(
    opts.mirrorConfig,
    planned.map((p) => p.target),
    pushed,
    'airlock mirror',
    (m) => progress.warn(m),
  )
  return {images, stats: run.stats, ...report, mirrorConfig}
}

/** Each image's target, all known before anything is copied (a collision is refused there). */
function plan(
  images: ImageEntry[],
  options: ReturnType<typeof checkTargetOptions>,
): {entry: ImageEntry; target: ImageTarget}[] {
  const targets = planTargets(
    images.map((e) => ({ref: e.name, digest: e.ref.digest ?? ''})),
    options,
  )
  return images.map((entry, n) => ({entry, target: targets[n]}))
}

/** A config blob in memory (to learn a single-platform image's platform), verified. */
function readConfig(client: RegistryClient, repository: string, desc: Descriptor): Promise<Buffer> {
  return client.getSmallBlob(repository, desc, `config ${desc.digest} of ${client.registry}/${repository}`)
}
