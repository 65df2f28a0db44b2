import pLimit from 'p-limit'

import type {BundleLock, LockBlob} from '../../bundle-json.js'
import type {Descriptor} from '../../content/descriptor.js'
import {isImageManifestMediaType, isIndexMediaType} from '../../content/media-types.js'
import type {Opener} from '../../content/opener.js'
import type {ImageSource} from '../../content/roles.js'
import {DEFAULT_CONCURRENCY, MAX_MANIFEST_BYTES} from '../../defaults.js'
import {walkGraph} from '../../graph/walk.js'
import type {OciArchive} from '../../oci/archive.js'
import type {RegistryClient} from '../../registry/client.js'
import type {MissingFromTarget} from '../holds.js'

/**
 * What a registry already holds, asked with HEAD and pull rights only (an
 * inventory may run with read-only credentials): a manifest by digest, a
 * blob with its size.
 */
export class RegistryHolds {
  private readonly seen = new Map<string, Promise<boolean>>()
  private readonly limit

  constructor(
    readonly client: RegistryClient,
    concurrency = DEFAULT_CONCURRENCY,
  ) {
    this.limit = pLimit(concurrency)
  }

  /** True when `repository` holds `desc`: a manifest (HEAD manifests/<digest>) or a blob (HEAD blobs/<digest>, same size). */
  holds(repository: string, desc: {digest: string; size: number; mediaType?: string}): Promise<boolean> {
    const key = `${repository}@${desc.digest}`
    let p = this.seen.get(key)
    if (!p) {
      p = this.limit(() =>
        isManifest(desc.mediaType) ? this.manifest(repository, desc.digest) : this.blob(repository, desc),
      )
      this.seen.set(key, p)
    }
    return p
  }

  private async manifest(repository: string, digest: string): Promise<boolean> {
    return (await this.client.headManifest(repository, digest)) !== undefined
  }

  private async blob(repository: string, desc: {digest: string; size: number}): Promise<boolean> {
    const res = await this.client.request({
      method: 'HEAD',
      path: `/v2/${repository}/blobs/${desc.digest}`,
      repository,
      actions: ['pull'],
      accept: (s) => (s >= 200 && s < 300) || s === 404,
      what: `blob ${desc.digest} of ${this.client.registry}/${repository}`,
    })
    if (res.status === 404) return false
    const len = res.headers['content-length']
    return len === undefined || Number(len) === desc.size
  }
}

export function isManifest(mediaType: string | undefined): boolean {
  return isIndexMediaType(mediaType) || isImageManifestMediaType(mediaType)
}

/** One image of a delta and the target repository it goes to. */
export interface DeltaImage {
  ref: string
  root: Descriptor
  repository: string
  /** bundle.json's bytes of the whole image (manifests, configs, layers): what it needs when its root is left out and missing. */
  size?: number
}

/**
 * Before a delta is pushed: every manifest and blob it leaves out that an
 * image needs must be in that image's target repository (a manifest there
 * means the registry holds all it points to), or, for a blob, in another
 * repository of the same registry that the push then mounts it from.
 * Returns what is missing and, for each blob found elsewhere, where.
 */
export async function checkDeltaTarget(
  archive: OciArchive,
  lock: BundleLock,
  images: DeltaImage[],
  holds: RegistryHolds,
): Promise<{missing: MissingFromTarget[]; holders: Map<string, string>}> {
  const fromBase = new Map<string, LockBlob>((lock.blobs ?? []).filter((b) => b.fromBase).map((b) => [b.digest, b]))
  const repositories = [...new Set(images.map((i) => i.repository))]
  const missing = new Map<string, MissingFromTarget>()
  const holders = new Map<string, string>()
  /** One left-out descriptor an image needs: in its repository, or (a blob) mountable from another. */
  const check = async (desc: Descriptor, img: DeltaImage): Promise<void> => {
    const left = fromBase.get(desc.digest)
    if (!left) return // a foreign layer, or content verify already refused
    const d = {digest: desc.digest, size: desc.size, mediaType: desc.mediaType ?? left.mediaType}
    if (await holds.holds(img.repository, d)) return
    if (!isManifest(d.mediaType)) {
      for (const other of repositories) {
        if (other !== img.repository && (await holds.holds(other, d))) {
          if (!holders.has(d.digest)) holders.set(d.digest, other)
          return
        }
      }
    }
    // A root left out and missing: the target lacks the whole image, and the walk cannot see past it; bundle.json has its bytes.
    const whole = d.digest === img.root.digest && img.size !== undefined && img.size > d.size
    const what = `${d.digest} (${isManifest(d.mediaType) ? 'manifest' : 'blob'}${whole ? ' and everything it points to' : ''}) of ${img.ref} in ${holds.client.registry}/${img.repository}`
    missing.set(`${img.repository}@${d.digest}`, {what, size: whole ? img.size! : d.size})
  }
  await Promise.all(
    images.map(async (img) => {
      const pending: Promise<void>[] = []
      // The archive's part of the graph is walked; where it stops (left out), the target is asked.
      await walkGraph(img.root, img.ref, {
        visit: (d, _at, edge) => {
          if (archive.hasBlob(d.digest)) return true
          if (!edge?.optional && edge?.role !== 'subject') pending.push(check(d, img))
          return false
        },
        bytes: (d) => (d.size <= MAX_MANIFEST_BYTES ? archive.readBlob(d.digest) : undefined),
        invalid: () => {}, // verify, run first, reports it
        label: (at) => at,
      })
      await Promise.all(pending)
    }),
  )
  return {missing: [...missing.values()].sort((a, b) => (a.what < b.what ? -1 : 1)), holders}
}

/**
 * A delta's images as a copy source: what the archive carries is read from
 * it; a manifest it leaves out is read back from the target repository
 * (checked present before anything was pushed). Left-out blobs are never
 * read: the sink finds them there, or mounts them.
 */
export class DeltaImageSource implements ImageSource {
  readonly name: string

  constructor(
    private readonly archive: ImageSource & {archive: OciArchive},
    private readonly client: RegistryClient,
    private readonly repository: string,
  ) {
    this.name = archive.name
  }

  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    if (this.archive.archive.hasBlob(desc.digest)) return this.archive.fetchManifest(desc)
    return (await this.client.getManifest(this.repository, desc.digest)).bytes
  }

  blobOpener(desc: Descriptor): Opener {
    return this.archive.blobOpener(desc)
  }
}
