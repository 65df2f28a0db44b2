import type {Descriptor} from '../content/descriptor.js'
import {FailureError} from '../errors.js'
import {ManifestParseError, type ParsedManifest, parseManifestJson} from '../graph/parse.js'
import {sha256Digest} from '../content/digest.js'
import {formatPlatform, indexPlatforms, isRunnableDescriptor, parsePlatform, platformMatches} from './platform.js'

/** A manifest or index as fetched: its bytes, media type and digest. */
export interface FetchedRoot {
  bytes: Buffer
  mediaType: string
  digest: string
}

export interface ChosenRoot {
  /** What to copy: the fetched root, or a new index holding only the platforms asked for. */
  root: FetchedRoot
  platforms: string[]
  /** When a platform filter rewrote an index: the registry's index digest. */
  sourceDigest?: string
}

/**
 * Which root an image entry copies, for `pull` and `mirror` alike: an index
 * filtered to the platforms asked for (a new index with the kept entries'
 * descriptors verbatim), the whole index for `all` or a pinned digest (a
 * registry refuses an index whose platform manifests are absent, and a
 * pinned digest must stay pullable by that digest), or a single manifest
 * whose config names an acceptable platform. `config` reads a config blob
 * (verified by the caller); `warn` gets what the user should know.
 */
export async function chooseRoot(
  name: string,
  fetched: FetchedRoot,
  wanted: string[] | 'all',
  pinned: boolean,
  config: (desc: Descriptor) => Promise<Buffer>,
  warn: (message: string) => void,
): Promise<ChosenRoot> {
  let doc: ParsedManifest
  try {
    doc = parseManifestJson(fetched.bytes, fetched.mediaType)
  } catch (err) {
    if (err instanceof ManifestParseError && err.reason === 'json') throw new FailureError(`manifest ${fetched.digest} of ${name} is not valid JSON`)
    if (err instanceof ManifestParseError) throw new FailureError(`${name}: unsupported manifest media type ${fetched.mediaType}`)
    throw err
  }
  if (doc.kind === 'index') {
    const {index} = doc
    const has = indexPlatforms(index.manifests)
    if (wanted === 'all') return {root: fetched, platforms: has}
    const specs = wanted.map(parsePlatform)
    if (pinned) {
      if (!index.manifests.every((d) => isRunnableDescriptor(d) && specs.some((w) => platformMatches(w, d.platform!)))) {
        warn(`${name}: pinned to an index digest; carrying all ${index.manifests.length} platforms (${has.join(', ')}) so that the mirror serves ${fetched.digest}, not only ${wanted.join(', ')}`)
      }
      return {root: fetched, platforms: has}
    }
    const kept = index.manifests.filter((d) => isRunnableDescriptor(d) && specs.some((w) => platformMatches(w, d.platform!)))
    if (kept.length === 0) {
      throw new FailureError(`${name}: none of the platforms asked for (${wanted.join(', ')}) is in the image; it has ${has.join(', ') || 'none'}`)
    }
    const missing = wanted.filter((w) => !kept.some((d) => platformMatches(parsePlatform(w), d.platform!)))
    if (missing.length > 0) warn(`${name}: has no ${missing.join(', ')} (it has ${has.join(', ')}); keeping the rest`)
    if (kept.length === index.manifests.length) return {root: fetched, platforms: indexPlatforms(kept)}
    const bytes = Buffer.from(JSON.stringify({...index, manifests: kept}))
    return {root: {bytes, mediaType: fetched.mediaType, digest: sha256Digest(bytes)}, platforms: indexPlatforms(kept), sourceDigest: fetched.digest}
  }
  const platform = configPlatform(await config(doc.manifest.config))
  if (wanted !== 'all' && platform && !wanted.some((w) => platformMatches(parsePlatform(w), parsePlatform(platform)))) {
    throw new FailureError(`${name}: the image is for ${platform} only, not ${wanted.join(', ')}`, {
      suggestions: [`add platforms: [${platform}] to the image in the manifest, or pull with --platform ${platform}`],
    })
  }
  return {root: fetched, platforms: platform ? [platform] : []}
}

/** `os/arch[/variant]` from an image config, or undefined (an artifact's config names none). */
function configPlatform(bytes: Buffer): string | undefined {
  try {
    const cfg = JSON.parse(bytes.toString('utf8')) as {os?: string; architecture?: string; variant?: string}
    if (!cfg.os || !cfg.architecture) return undefined
    return formatPlatform({os: cfg.os, architecture: cfg.architecture, variant: cfg.variant})
  } catch {
    return undefined
  }
}
