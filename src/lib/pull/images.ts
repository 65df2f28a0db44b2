import pLimit from 'p-limit'

import type {LockImage} from '../bundle-json.js'
import {Copier} from '../copy.js'
import {inFlight} from '../defaults.js'
import {FailureError} from '../errors.js'
import {chooseRoot} from '../oci/choose-root.js'
import {OciLayoutSink} from '../oci/layout.js'
import type {Descriptor} from '../content/descriptor.js'
import type {RegistryClient} from '../registry/client.js'
import {RegistrySource} from '../registry/source.js'
import type {ImageEntry, Manifest, ReferrerSelection} from '../manifest/types.js'
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
  const layout = new OciLayoutSink(ctx.store, {lowSpeed: ctx.lowSpeed, signal: ctx.signal, deferIndex: true})
  const copier = new Copier({sink: layout, pool: ctx.pool, concurrency: ctx.concurrency})

  // A bounded number of images at once: each holds its manifests and a progress row only while it runs.
  const images = pLimit(inFlight(ctx.concurrency))
  let settled: PromiseSettledResult<ImagePullResult>[]
  try {
    settled = await Promise.allSettled(
      manifest.images.map((entry) => images(() => pullImage(entry, ctx.registry(entry.ref.registry), {layout, copier}, ctx, manifest.referrers ?? 'all'))),
    )
  } finally {
    // index.json once, with every image tagged, the failed ones' neighbours too.
    await layout.flush()
  }
  return valuesOrFirstFailure(settled)
}

/** The platforms asked for an image: `--platform`, else its own or the manifest's; `all` keeps every one. */
function wantedPlatforms(entry: ImageEntry, ctx: PullContext): string[] | 'all' {
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

    let total = 0
    const r = await copier.copyImage({
      source,
      root,
      refs: [entry.name],
      label: entry.name,
      onPlan: (p) => {
        total = p.totalBytes
        task.setTotal(p.totalBytes)
      },
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
    task.done(
      `${shortDigest(r.digest)} ${platforms.join(', ') || 'no platform'} ${formatBytes(total)}` +
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
async function readConfig(desc: Descriptor, source: RegistrySource, layout: OciLayoutSink, label: string): Promise<{bytes: Buffer; fetched: number}> {
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
