import type {Descriptor} from '../content/descriptor.js'
import {sha256Digest} from '../content/digest.js'
import {FailureError} from '../errors.js'
import {ManifestParseError, type ParsedManifest, parseManifestJson} from '../graph/parse.js'
import {formatPlatform, indexPlatforms, isRunnableDescriptor, parsePlatform, platformMatches} from './platform.js'
import type {ImageReference} from './reference.js'

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
 * Whether a reference keeps a whole index whatever the platform filter: one
 * pinned by digest alone (`host/app@sha256:...`). The filtered index would
 * have no name to be served under but its new digest, and the pinned digest
 * must stay pullable after import, which needs every platform (a registry
 * refuses an index whose platform manifests are absent). A reference with a
 * tag and a digest (what `airlock lock` writes) is fetched by the digest,
 * so the content is exactly what was locked, and filtered as a tag is: the
 * kept platforms are served under the tag, the same index an unlocked pull
 * of that tag stores.
 */
export function keepsWholeIndex(ref: Pick<ImageReference, 'tag' | 'digest'>): boolean {
  return ref.digest !== undefined && ref.tag === undefined
}

/**
 * Which root an image entry copies, for `pull` and `mirror` alike: an index
 * filtered to the platforms asked for (a new index with the kept entries'
 * descriptors verbatim), the whole index for `all` or a digest-only
 * reference (`keepsWholeIndex`), or a single manifest whose config names an
 * acceptable platform. `fetched` is what `ref` names (by its digest when it
 * has one); `io.config` reads a config blob (verified by the caller);
 * `io.warn` gets what the user should know.
 */
export async function chooseRoot(
  name: string,
  fetched: FetchedRoot,
  wanted: string[] | 'all',
  ref: Pick<ImageReference, 'tag' | 'digest'>,
  io: {config: (desc: Descriptor) => Promise<Buffer>; warn: (message: string) => void},
): Promise<ChosenRoot> {
  const {config, warn} = io
  let doc: ParsedManifest
  try {
    doc = parseManifestJson(fetched.bytes, fetched.mediaType)
  } catch (err) {
    if (err instanceof ManifestParseError && err.reason === 'json')
      throw new FailureError(`manifest ${fetched.digest} of ${name} is not valid JSON`)
    if (err instanceof ManifestParseError)
      throw new FailureError(`${name}: unsupported manifest media type ${fetched.mediaType}`)
    throw err
  }
  if (doc.kind === 'index') {
    const {index} = doc
    const has = indexPlatforms(index.manifests)
    if (wanted === 'all') return {root: fetched, platforms: has}
    const specs = wanted.map(parsePlatform)
    if (keepsWholeIndex(ref)) {
      if (
        !index.manifests.every((d) => isRunnableDescriptor(d) && specs.some((w) => platformMatches(w, d.platform!)))
      ) {
        warn(
          `${name}: pinned to an index digest with no tag; carrying all ${index.manifests.length} platforms (${has.join(', ')}) so that the mirror serves ${fetched.digest}, not only ${wanted.join(', ')} (name a tag too, host/repo:tag@sha256:..., to filter it)`,
        )
      }
      return {root: fetched, platforms: has}
    }
    const kept = index.manifests.filter(
      (d) => isRunnableDescriptor(d) && specs.some((w) => platformMatches(w, d.platform!)),
    )
    if (kept.length === 0) {
      throw new FailureError(
        `${name}: none of the platforms asked for (${wanted.join(', ')}) is in the image; it has ${has.join(', ') || 'none'}`,
      )
    }
    const missing = wanted.filter((w) => !kept.some((d) => platformMatches(parsePlatform(w), d.platform!)))
    if (missing.length > 0) warn(`${name}: has no ${missing.join(', ')} (it has ${has.join(', ')}); keeping the rest`)
    if (kept.length === index.manifests.length) return {root: fetched, platforms: indexPlatforms(kept)}
    const bytes = Buffer.from(JSON.stringify({...index, manifests: kept}))
    return {
      root: {bytes, mediaType: fetched.mediaType, digest: sha256Digest(bytes)},
      platforms: indexPlatforms(kept),
      sourceDigest: fetched.digest,
    }
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
