import type {ImageIndex, ImageManifest} from '../content/descriptor.js'
import {isImageManifestMediaType, isIndexMediaType} from '../content/media-types.js'

/**
 * The one parser of manifest documents: OCI and Docker v2 manifests and
 * indexes, and an OCI layout's `index.json`. Callers word the error for
 * their own report; the reason says what was wrong.
 */

export type ParsedManifest =
  | {kind: 'index'; mediaType?: string; index: ImageIndex}
  | {kind: 'manifest'; mediaType?: string; manifest: ImageManifest}

export class ManifestParseError extends Error {
  constructor(
    /** `json`: not JSON; `kind`: JSON, but neither a manifest nor an index; `shape`: an index without its manifests list. */
    readonly reason: 'json' | 'kind' | 'shape',
    message: string,
    /** The media type the document declared, else the one it was asked for under. */
    readonly mediaType?: string,
  ) {
    super(message)
    this.name = 'ManifestParseError'
  }
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8'))
  } catch (err) {
    throw new ManifestParseError('json', (err as Error).message)
  }
}

/**
 * Manifest or index bytes, typed. The kind is the document's own
 * `mediaType`, else `declared` (the descriptor's or the Content-Type), else
 * its shape: a `manifests` list is an index, a `config` a manifest.
 */
export function parseManifestJson(bytes: Uint8Array, declared?: string): ParsedManifest {
  const doc = parseJson(bytes) as (Partial<ImageIndex> & Partial<ImageManifest>) | null
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
    throw new ManifestParseError('kind', 'not a JSON object', declared)
  const mediaType = typeof doc.mediaType === 'string' ? doc.mediaType : declared
  if (isIndexMediaType(mediaType) || Array.isArray(doc.manifests))
    return {kind: 'index', mediaType, index: doc as ImageIndex}
  if (isImageManifestMediaType(mediaType) || doc.config)
    return {kind: 'manifest', mediaType, manifest: doc as ImageManifest}
  throw new ManifestParseError('kind', `media type ${mediaType ?? '(none)'}, not an image manifest or index`, mediaType)
}

/** The fields a parsed document lacks that its kind requires. */
export function manifestGaps(parsed: ParsedManifest): ('manifests' | 'config' | 'layers')[] {
  if (parsed.kind === 'index') return Array.isArray(parsed.index.manifests) ? [] : ['manifests']
  const gaps: ('config' | 'layers')[] = []
  if (!parsed.manifest.config) gaps.push('config')
  if (!Array.isArray(parsed.manifest.layers)) gaps.push('layers')
  return gaps
}

/** An OCI image layout's `index.json`: an index with a `manifests` list. */
export function parseLayoutIndex(bytes: Uint8Array): ImageIndex {
  const doc = parseJson(bytes) as Partial<ImageIndex> | null
  if (!doc || !Array.isArray(doc.manifests)) throw new ManifestParseError('shape', 'no manifests array')
  return doc as ImageIndex
}
