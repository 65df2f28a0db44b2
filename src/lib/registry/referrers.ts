import {FailureError} from '../errors.js'
import {digestHex} from '../oci/digest.js'
import type {ImageIndex} from '../content/descriptor.js'
import {MediaType} from '../content/media-types.js'
import type {RegistryClient} from './client.js'

/** The referrers tag schema's tag for a digest: `sha256-<hex>`. */
export function referrersTag(digest: string): string {
  return `sha256-${digestHex(digest)}`
}

/**
 * `GET /v2/<name>/referrers/<digest>`: the index of what refers to `digest`,
 * or undefined when the registry has no referrers API (distribution 2.8
 * answers 404; some answer 400 or 405).
 */
export async function referrersApi(client: RegistryClient, repository: string, digest: string): Promise<ImageIndex | undefined> {
  const res = await client.request({
    path: `/v2/${repository}/referrers/${digest}`,
    repository,
    headers: {accept: MediaType.ociIndex},
    accept: (s) => (s >= 200 && s < 300) || s === 404 || s === 400 || s === 405,
    what: `referrers of ${client.registry}/${repository}@${digest}`,
  })
  if (res.status !== 200) return undefined
  return parseIndex(res.body, `referrers of ${client.registry}/${repository}@${digest}`)
}

/** The referrers tag schema's index of `digest`, or undefined when the tag is not there. */
export async function referrersTagIndex(client: RegistryClient, repository: string, digest: string): Promise<ImageIndex | undefined> {
  const tag = referrersTag(digest)
  if (!(await client.headManifest(repository, tag))) return undefined
  return parseIndex((await client.getManifest(repository, tag)).bytes, `${client.registry}/${repository}:${tag}`)
}

function parseIndex(bytes: Buffer, what: string): ImageIndex {
  let doc: ImageIndex
  try {
    doc = JSON.parse(bytes.toString('utf8')) as ImageIndex
  } catch {
    throw new FailureError(`${what}: not JSON`)
  }
  if (!Array.isArray(doc?.manifests)) throw new FailureError(`${what}: not an OCI index`)
  return doc
}
