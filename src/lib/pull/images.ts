import type {LockImage} from '../lock.js'
import {Copier, type CopyRoot} from '../copy.js'
import {FailureError} from '../errors.js'
import {sha256Digest} from '../oci/digest.js'
import {OciLayoutSink} from '../oci/layout.js'
import type {Descriptor} from '../content/descriptor.js'
import {ManifestParseError, type ParsedManifest, parseManifestJson} from '../graph/parse.js'
import {formatPlatform, indexPlatforms, isRunnableDescriptor, parsePlatform, platformMatches} from '../oci/platform.js'
import type {RegistryClient} from '../registry/client.js'
import {RegistrySource} from '../registry/source.js'
import type {ImageEntry, Manifest, ReferrerSelection} from '../manifest/types.js'
import {formatBytes, shortDigest} from '../ui/format.js'
import {type PullContext, valuesOrFirstFailure} from './context.js'
import {pullReferrers} from './referrers.js'

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
  const layout = new OciLayoutSink(ctx.store, {lowSpeed: ctx.lowSpeed, signal: ctx.signal})
  const copier = new Copier({sink: layout, pool: ctx.pool, concurrency: ctx.concurrency})

  const settled = await Promise.allSettled(
    manifest.images.map((entry) => pullImage(entry, ctx.registry(entry.ref.registry), layout, copier, ctx, manifest.referrers ?? 'all')),
  )
  return valuesOrFirstFailure(settled)
}

/** The platforms asked for an image: `--platform`, else its own or the manifest's; `all` keeps every one. */
function wantedPlatforms(entry: ImageEntry, ctx: PullContext): string[] | 'all' {
  return ctx.platforms ?? entry.platforms
}

async function pullImage(
  entry: ImageEntry,
  client: RegistryClient,
  layout: OciLayoutSink,
  copier: Copier,
  ctx: PullContext,
  referrerSelection: ReferrerSelection,
): Promise<ImagePullResult> {
  const task = ctx.progress.task(entry.name)
  try {
    const source = new RegistrySource(client, entry.ref.repository, layout)
    const fetched = await client.getManifest(entry.ref.repository, entry.ref.digest ?? entry.ref.tag ?? 'latest')
    const doc = parseRoot(fetched, entry.name)
    const wanted = wantedPlatforms(entry, ctx)
    let root: CopyRoot = fetched
    let platforms: string[]
    let sourceDigest: string | undefined
    let configFetched = 0

    if (doc?.kind === 'index') {
      const {index} = doc
      const has = indexPlatforms(index.manifests)
      if (wanted === 'all') {
        platforms = has
      } else if (entry.ref.digest !== undefined) {
        // A pinned digest must be pullable by that digest from the mirror, and a registry
        // refuses an index whose platform manifests are absent: the whole index comes along.
        platforms = has
        const specs = wanted.map(parsePlatform)
        if (!index.manifests.every((d) => isRunnableDescriptor(d) && specs.some((w) => platformMatches(w, d.platform!)))) {
          ctx.progress.warn(
            `${entry.name}: pinned to an index digest; carrying all ${index.manifests.length} platforms (${has.join(', ')}) so that the mirror serves ${entry.ref.digest}, not only ${wanted.join(', ')}`,
          )
        }
      } else {
        const specs = wanted.map(parsePlatform)
        const kept = index.manifests.filter((d) => isRunnableDescriptor(d) && specs.some((w) => platformMatches(w, d.platform!)))
        if (kept.length === 0) {
          throw new FailureError(`${entry.name}: none of the platforms asked for (${wanted.join(', ')}) is in the image; it has ${has.join(', ') || 'none'}`)
        }
        const missing = wanted.filter((w) => !kept.some((d) => platformMatches(parsePlatform(w), d.platform!)))
        if (missing.length > 0) ctx.progress.warn(`${entry.name}: has no ${missing.join(', ')} (it has ${has.join(', ')}); keeping the rest`)
        platforms = indexPlatforms(kept)
        if (kept.length !== index.manifests.length) {
          // A new index with the kept entries' descriptors verbatim; everything else of the source index stays.
          const bytes = Buffer.from(JSON.stringify({...index, manifests: kept}))
          root = {bytes, mediaType: fetched.mediaType, digest: sha256Digest(bytes)}
          sourceDigest = fetched.digest
        }
      }
    } else if (doc?.kind === 'manifest') {
      const m = doc.manifest
      const cfg = await readConfig(m.config, source, layout, `config ${m.config.digest} of ${entry.name}`)
      configFetched = cfg.fetched
      const platform = cfg.platform
      platforms = platform ? [platform] : []
      if (wanted !== 'all' && platform) {
        const ok = wanted.some((w) => platformMatches(parsePlatform(w), parsePlatform(platform)))
        if (!ok) {
          throw new FailureError(`${entry.name}: the image is for ${platform} only, not ${wanted.join(', ')}`, {
            suggestions: [`add platforms: [${platform}] to the image in the manifest, or pull with --platform ${platform}`],
          })
        }
      }
    } else {
      throw new FailureError(`${entry.name}: unsupported manifest media type ${fetched.mediaType}`)
    }

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
    // What refers to the registry's digest (the source index when the filter rewrote it) and to each platform manifest kept.
    const subjects = [...new Set([fetched.digest, ...r.manifests.map((m) => m.desc.digest).filter((d) => d !== r.digest || !sourceDigest)])]
    const referrers = await pullReferrers({
      client,
      repository: entry.ref.repository,
      source,
      copier,
      layout,
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

/** The root as a typed document; undefined when it is neither an image manifest nor an index. */
function parseRoot(fetched: {bytes: Buffer; mediaType: string; digest: string}, name: string): ParsedManifest | undefined {
  try {
    return parseManifestJson(fetched.bytes, fetched.mediaType)
  } catch (err) {
    if (err instanceof ManifestParseError && err.reason === 'json') throw new FailureError(`manifest ${fetched.digest} of ${name} is not valid JSON`)
    if (err instanceof ManifestParseError) return undefined
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
): Promise<{platform?: string; fetched: number}> {
  let fetched = 0
  let bytes = await layout.readBlob(desc)
  if (!bytes) {
    const r = await layout.putBlob(desc, source.blobOpener(desc), {label})
    fetched = r.bytesFetched
    bytes = await layout.readBlob(desc)
    if (!bytes) throw new FailureError(`${label}: not readable after download`)
  }
  try {
    const cfg = JSON.parse(bytes.toString('utf8')) as {os?: string; architecture?: string; variant?: string}
    if (!cfg.os || !cfg.architecture) return {fetched}
    return {platform: formatPlatform({os: cfg.os, architecture: cfg.architecture, variant: cfg.variant}), fetched}
  } catch {
    // Not a JSON config (an artifact): no platform to check.
    return {fetched}
  }
}
