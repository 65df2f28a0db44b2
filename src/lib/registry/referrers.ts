import {digestHex} from '../content/digest.js'
import {MediaType} from '../content/media-types.js'
import type {RegistryClient} from './client.js'

/** The referrers tag schema's tag for a digest: `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  return `sha256-${digestHex(digest)}`
}

/**
 * Whether a tag is an artifact's, not an image's: the referrers tag schema's
 * `sha256-<hex>` or cosign's `sha256-<hex>.sig`/`.att`/`.sbom`. They travel
 * with the referrers of the image they name, never as images of their own.
 */
export function isReferrerTag(tag: string): boolean {
  return /^sha256-[0-9a-f]{64}(\.[a-z]+)?$/.test(tag)
}

/**
 * Whether the registry answers the referrers API for `digest` (distribution
 * 2.8 answers 404; some answer 400 or 405): where it does, the registry keeps
 * the list itself and a pusher writes no referrers tag schema index.
 */
export async function hasReferrersApi(client: RegistryClient, repository: string, digest: string): Promise<boolean> {
  const res = await client.request({
    path: `/v2/${repository}/referrers/${digest}`,
    repository,
    headers: {accept: MediaType.ociIndex},
    accept: (s) => (s >= 200 && s < 300) || s === 404 || s === 400 || s === 405,
    what: `referrers of ${client.registry}/${repository}@${digest}`,
  })
  return res.status >= 200 && res.status < 300
}
