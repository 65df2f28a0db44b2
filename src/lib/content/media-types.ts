import type {Descriptor} from './descriptor.js'

/** The manifest media types a pull asks for and understands. */
export const MediaType = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const

/** `Accept` for manifest GETs: every kind we can store, most specific first. */
export const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerList,
  MediaType.dockerManifest,
].join(', ')

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MediaType.ociIndex || mt === MediaType.dockerList
}

export function isImageManifestMediaType(mt: string | undefined): boolean {
  return mt === MediaType.ociManifest || mt === MediaType.dockerManifest
}

export function isSchema1MediaType(mt: string | undefined): boolean {
  return mt === MediaType.dockerSchema1 || mt === MediaType.dockerSchema1Signed
}

/** The media type without parameters (`; charset=utf-8`). */
export function bareMediaType(contentType: string | undefined): string | undefined {
  const mt = contentType?.split(';')[0]?.trim().toLowerCase()
  return mt || undefined
}

/** Media types of layers a registry may not redistribute (Windows base layers): OCI non-distributable, Docker foreign. */
const FOREIGN_MEDIA_TYPE = /\.foreign\.|nondistributable/

/**
 * A layer that lives at its `urls`, not in the registry: it is referenced,
 * never copied, and a store or bundle need not hold it. One typed as foreign
 * but without `urls` can only be served by the registry itself, so it is an
 * ordinary blob and is copied like any other.
 */
export function isForeignLayer(desc: Pick<Descriptor, 'mediaType' | 'urls'>): boolean {
  return FOREIGN_MEDIA_TYPE.test(desc.mediaType ?? '') && (desc.urls?.length ?? 0) > 0
}

/** The media type of manifest bytes: the Content-Type when specific, else the document's own field or shape. */
export function manifestMediaType(bytes: Uint8Array, contentType?: string): string {
  if (
    contentType &&
    contentType !== 'application/json' &&
    contentType !== 'text/plain' &&
    contentType !== 'application/octet-stream'
  ) {
    return contentType
  }
  let j: {mediaType?: string; schemaVersion?: number; manifests?: unknown; config?: unknown}
  try {
    j = JSON.parse(Buffer.from(bytes).toString('utf8'))
  } catch {
    return contentType ?? 'application/octet-stream'
  }
  if (typeof j.mediaType === 'string') return j.mediaType
  if (j.schemaVersion === 1) return MediaType.dockerSchema1
  if (Array.isArray(j.manifests)) return MediaType.ociIndex
  if (j.config) return MediaType.ociManifest
  return contentType ?? 'application/octet-stream'
}
