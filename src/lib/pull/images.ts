import type {LimitFunction} from 'p-limit'
import pLimit from 'p-limit'

import type {LockImage} from '../bundle-json.js'
import type {Descriptor} from '../content/descriptor.js'
import {Copier, planGraph, verifiedManifest} from '../copy.js'
import {inFlight} from '../defaults.js'
import {FailureError} from '../errors.js'
import type {ImageEntry, Manifest, ReferrerSelection} from '../manifest/types.js'
import {chooseRoot} from '../oci/choose-root.js'
import {OciLayoutSink} from '../oci/layout.js'
import type {RegistryClient} from '../registry/client.js'
import {RegistrySource} from '../registry/source.js'
import {formatBytes, shortDigest} from '../ui/format.js'
import {type PullContext, valuesOrFirstFailure} from './context.js'
import {pullReferrers, referrerSubjects} from './referrers.js'

export interface ImagePullResult {
  ref: string
  digest: string
  mediaType: string
  platforms: string[]
  bytesFetched: number
  bytesReused: number
  /** When a platform filter rewrote an index: the registry's index digest. */
  sourceDigest?: string
  /** The image's entry for records.json / bundle.json. */
  lock: LockImage
}

/**
 * Pull every image of the manifest into the store's OCI layout: resolve each
 * reference, choose its platforms, and copy registry -> layout through one
 * Copier, so blobs of all images share the pool and each digest comes once.
 */
export async function pullImages(manifest: Manifest, ctx: PullContext): Promise<ImagePullResult[]> {
  if (manifest.images.length === 0) return []
  // Blobs and manifests get their final names in batches, each after one flush of the filesystem (see StagedFiles).
  const layout = new OciLayoutSink(ctx.store, {
    lowSpeed: ctx.lowSpeed,
    signal: ctx.signal,
    deferIndex: true,
    deferCommit: true,
  })
  const copier = new Copier({sink: layout, pool: ctx.pool, concurrency: ctx.concurrency})

  // A bounded number of images at once: each holds its manifests and a progress row only while it runs.
  const images = pLimit(inFlight(ctx.concurrency))
  let settled: PromiseSettledResult<ImagePullResult>[]
  try {
    settled = await Promise.allSettled(
      manifest.images.map((entry) =>
        images(() =>
          pullImage(entry, ctx.registry(entry.ref.registry), {layout, copier}, ctx, manifest.referrers ?? 'all'),
        ),
      ),
    )
  } finally {
    // Every staged blob under its final name, then index.json once, with every image tagged, the failed ones' neighbours too.
    await layout.flush()
  }
  return valuesOrFirstFailure(settled)
}

/** The platforms asked for an image: `--platform`, else its own or the manifest's; `all` keeps every one. */
function wantedPlatforms(entry: ImageEntry, ctx: Pick<PullContext, 'platforms'>): string[] | 'all' {
  return ctx.platforms ?? entry.platforms
}

async function pullImage(
  entry: ImageEntry,
  client: RegistryClient,
  into: {layout: OciLayoutSink; copier: Copier},
  ctx: PullContext,
  referrerSelection: ReferrerSelection,
): Promise<ImagePullResult> {
  const {layout, copier} = into
  const task = ctx.progress.task(entry.name)
  try {
    const source = new RegistrySource(client, entry.ref.repository, layout)
    const fetched = await client.getManifest(entry.ref.repository, entry.ref.digest ?? entry.ref.tag ?? 'latest')
    let configFetched = 0
    const {root, platforms, sourceDigest} = await chooseRoot(
      entry.name,
      fetched,
      wantedPlatforms(entry, ctx),
      entry.ref,
      {
        config: async (desc) => {
          const cfg = await readConfig(desc, source, layout, `config ${desc.digest} of ${entry.name}`)
          configFetched = cfg.fetched
          return cfg.bytes
        },
        warn: (m) => ctx.progress.warn(m),
      },
    )

    const r = await copier.copyImage({
      source,
      root,
      refs: [entry.name],
      label: entry.name,
      onPlan: (p) => task.setTotal(p.totalBytes),
      onBytes: (n) => task.advance(n),
    })
    const subjects = referrerSubjects(fetched.digest, r, sourceDigest)
    const referrers = await pullReferrers({
      client,
      repository: entry.ref.repository,
      source,
      copier,
      record: (e) => layout.addReferrer(e),
      subjects,
      selection: referrerSelection,
      image: entry.name,
      replaced: sourceDigest,
      warn: (m) => ctx.progress.warn(m),
    })
    const bytesFetched = r.bytesFetched + configFetched
    const bytesReused = Math.max(0, r.bytesReused - configFetched)
    // The image's size as its result and the table give it (manifests and blobs), not the blob bytes of the progress bar.
    task.done(
      `${shortDigest(r.digest)} ${platforms.join(', ') || 'no platform'} ${formatBytes(r.size)}` +
        (referrers.length > 0 ? `, ${referrers.length} referrer${referrers.length === 1 ? '' : 's'}` : '') +
        (bytesFetched === 0 ? ', all in the store' : `, fetched ${formatBytes(bytesFetched)}`),
    )
    const lock: LockImage = {
      ref: entry.name,
      digest: r.digest,
      mediaType: r.mediaType,
      platforms,
      size: r.size,
      ...(sourceDigest ? {sourceDigest} : {}),
      ...(referrers.length > 0 ? {referrers} : {}),
    }
    return {
      ref: entry.name,
      digest: r.digest,
      mediaType: r.mediaType,
      platforms,
      bytesFetched,
      bytesReused,
      ...(sourceDigest ? {sourceDigest} : {}),
      lock,
    }
  } catch (err) {
    task.fail((err as Error).message)
    throw err
  }
}

/**
 * The config of a single-platform image, to learn its platform: from the
 * layout when there, else downloaded into it (verified, so the copy that
 * follows finds it and does not fetch it again).
 */
async function readConfig(
  desc: Descriptor,
  source: RegistrySource,
  layout: OciLayoutSink,
  label: string,
): Promise<{bytes: Buffer; fetched: number}> {
  let fetched = 0
  let bytes = await layout.readBlob(desc)
  if (!bytes) {
    const r = await layout.putBlob(desc, source.blobOpener(desc), {label})
    fetched = r.bytesFetched
    bytes = await layout.readBlob(desc)
    if (!bytes) throw new FailureError(`${label}: not readable after download`)
  }
  return {bytes, fetched}
}

/** What a pull of one image would do, read from its manifests alone (`pull --dry-run`, `validate --resolve`). */
export interface ImagePlan {
  ref: string
  digest: string
  mediaType: string
  platforms: string[]
  /** Manifests and unique blobs, as a pull's `size`. */
  size: number
  /** Blob bytes a pull would fetch: those the store lacks, each digest counted for the first image (manifest order) that needs it. */
  bytesToFetch: number
  /** Blob bytes already in the store, or fetched for an earlier image of the manifest (as a pull's bytesReused). */
  bytesReused: number
  /** Blob bytes already in the store, each digest counted for the first image that has it (they sum to the store's share). */
  bytesInStore: number
  /** When a platform filter would rewrite an index: the registry's index digest. */
  sourceDigest?: string
}

/**
 * Plan every image of the manifest as pull would take it, reading manifests
 * and (for a single-platform image) its small config blob, never a layer:
 * the root and platforms chosen by the same chooseRoot, failing as pull
 * fails on a platform the image lacks; the blobs listed by the copier's own
 * planGraph; each blob checked against the store's layout as the copier
 * checks it (present with its size). Without a store, every blob is to fetch.
 */
export async function planImages(
  manifest: Manifest,
  ctx: Pick<PullContext, 'registry' | 'platforms' | 'concurrency' | 'progress'> & {store?: PullContext['store']},
  /** What an image's failure becomes (validate names the manifest line); by default itself, as pull throws it. */
  failure: (entry: ImageEntry, err: unknown) => unknown = (_entry, err) => err,
): Promise<ImagePlan[]> {
  if (manifest.images.length === 0) return []
  const layout = ctx.store ? new OciLayoutSink(ctx.store) : undefined
  const images = pLimit(inFlight(ctx.concurrency))
  const reads = pLimit(Math.max(1, ctx.concurrency))
  const planImage = (entry: ImageEntry) => planOneImage(entry, ctx, layout, reads)
  const planned = valuesOrFirstFailure(
    await Promise.allSettled(
      manifest.images.map((entry) =>
        images(async () => {
          try {
            return await planImage(entry)
          } catch (err) {
            throw failure(entry, err)
          }
        }),
      ),
    ),
  )
  // Each blob counts once, for the first image that has it; the others reuse it.
  const claimed = new Set<string>()
  const claim = (blobs: Descriptor[]) => {
    let n = 0
    for (const b of blobs) {
      if (claimed.has(b.digest)) continue
      claimed.add(b.digest)
      n += b.size
    }
    return n
  }
  return planned.map((p) => {
    const bytesToFetch = claim(p.missing)
    const bytesInStore = claim(p.present)
    return {
      ref: p.entry.name,
      digest: p.root.digest,
      mediaType: p.root.mediaType,
      platforms: p.platforms,
      size: p.size,
      bytesToFetch,
      bytesReused: p.blobBytes - bytesToFetch,
      bytesInStore,
      ...(p.sourceDigest ? {sourceDigest: p.sourceDigest} : {}),
    }
  })
}

/** One image's root, platforms and blobs (those the layout holds apart), as planImages takes them. */
async function planOneImage(
  entry: ImageEntry,
  ctx: Pick<PullContext, 'registry' | 'platforms' | 'progress'>,
  layout: OciLayoutSink | undefined,
  reads: LimitFunction,
) {
  const client = ctx.registry(entry.ref.registry)
  const source = new RegistrySource(client, entry.ref.repository, layout)
  const fetched = await client.getManifest(entry.ref.repository, entry.ref.digest ?? entry.ref.tag ?? 'latest')
  // A config is small (capped like a manifest, verified) and read into memory only: a dry run writes nothing.
  const config = async (d: Descriptor) =>
    (await layout?.readBlob(d)) ??
    reads(() => client.getSmallBlob(entry.ref.repository, d, `config ${d.digest} of ${entry.name}`))
  const {root, platforms, sourceDigest} = await chooseRoot(
    entry.name,
    fetched,
    wantedPlatforms(entry, ctx),
    entry.ref,
    {config, warn: (m) => ctx.progress.warn(m)},
  )
  const rootDesc: Descriptor = {mediaType: root.mediaType, digest: root.digest, size: root.bytes.length}
  const graph = await planGraph(
    rootDesc,
    root.bytes,
    (d) => reads(() => verifiedManifest(source, d, entry.name)),
    entry.name,
  )
  const blobs = [...graph.blobs.values()]
  const held = await Promise.all(blobs.map(async (b) => (layout ? layout.hasBlob(b) : false)))
  const blobBytes = blobs.reduce((n, b) => n + b.size, 0)
  const size = [...graph.manifests.values()].reduce((n, m) => n + m.bytes.length, 0) + blobBytes
  return {
    entry,
    root,
    platforms,
    sourceDigest,
    size,
    blobBytes,
    missing: blobs.filter((_, n) => !held[n]),
    present: blobs.filter((_, n) => held[n]),
  }
}
