import type {LockReferrer} from '../bundle-json.js'
import type {Descriptor, ImageManifest} from '../content/descriptor.js'
import {MediaType} from '../content/media-types.js'
import type {ImageSource} from '../content/roles.js'
import type {Copier} from '../copy.js'
import {FailureError} from '../errors.js'
import {parseManifestJson} from '../graph/parse.js'
import type {ReferrerSelection} from '../manifest/types.js'
import {COSIGN_TAG_SUFFIXES, cosignTag} from '../oci/cosign.js'
import type {RegistryClient} from '../registry/client.js'

/** A referrer as a registry lists it: its descriptor, and the tag it was found under (cosign's). */
export interface FoundReferrer {
  desc: Descriptor
  tag?: string
}

/**
 * What refers to `digest` in `repository`: the referrers API where the
 * registry answers it, else the referrers tag schema's `sha256-<hex>` index;
 * and cosign's `sha256-<hex>.sig`, `.att` and `.sbom` tags (cosign's
 * tag-based artifacts have no `subject`, so no API lists them). The tags
 * are looked up in the repository's tag list, read once per run (see
 * `RegistryClient.mayHaveTag`): only those it holds get a HEAD.
 */
export async function findReferrers(
  client: RegistryClient,
  repository: string,
  digest: string,
): Promise<FoundReferrer[]> {
  // The lookups are independent small requests: all at once.
  const [listed, ...tagged] = await Promise.all([
    client.referrers(repository, digest, undefined, {listedTags: true}),
    ...COSIGN_TAG_SUFFIXES.map(async (suffix): Promise<FoundReferrer | undefined> => {
      const tag = cosignTag(digest, suffix)
      if (!(await client.mayHaveTag(repository, tag)) || !(await client.headManifest(repository, tag))) return undefined
      const m = await client.getManifest(repository, tag)
      return {desc: {mediaType: m.mediaType, digest: m.digest, size: m.bytes.length}, tag}
    }),
  ])
  return [
    ...(listed as Descriptor[]).map((desc) => ({desc})),
    ...tagged.filter((t): t is FoundReferrer => t !== undefined),
  ]
}

/** A referrer's manifest (or index) as parsed by the one parser; a failure names it. */
function referrerDoc(
  bytes: Buffer,
  what: string,
): {mediaType?: string; artifactType?: string; config?: Descriptor; subject?: Descriptor} {
  let parsed
  try {
    parsed = parseManifestJson(bytes)
  } catch (err) {
    throw new FailureError(`${what} is not a manifest: ${(err as Error).message}`)
  }
  const doc = (parsed.kind === 'index' ? parsed.index : parsed.manifest) as ImageManifest & {artifactType?: string}
  return {
    mediaType: parsed.mediaType,
    artifactType: doc.artifactType,
    config: parsed.kind === 'manifest' ? doc.config : undefined,
    subject: doc.subject,
  }
}

/** The OCI rule: a manifest's own artifactType, else its config's media type. */
export function artifactTypeOf(bytes: Buffer, what: string): string {
  const doc = referrerDoc(bytes, what)
  const t = doc.artifactType ?? doc.config?.mediaType
  if (typeof t !== 'string' || t === '')
    throw new FailureError(`${what} has neither an artifactType nor a config media type`)
  return t
}

/**
 * Whose referrers an image carries: the registry's digest of what was
 * fetched (the upstream index when a platform filter replaced it, whose
 * cosign signature then still comes) and each manifest copied under it, but
 * a filtered index of our own making, which no registry has referrers of.
 */
export function referrerSubjects(
  fetchedDigest: string,
  copied: {digest: string; manifests: {desc: Descriptor}[]},
  replaced?: string,
): string[] {
  return [
    ...new Set([
      fetchedDigest,
      ...copied.manifests.map((m) => m.desc.digest).filter((d) => d !== copied.digest || !replaced),
    ]),
  ]
}

export function selected(selection: ReferrerSelection, artifactType: string): boolean {
  return selection === 'all' || (selection !== 'none' && selection.artifactTypes.includes(artifactType))
}

export interface PullReferrersRequest {
  client: RegistryClient
  repository: string
  source: ImageSource
  /** Into the sink the image went: the store's layout (`pull`), a target repository (`mirror`). */
  copier: Copier
  /** Each referrer copied, once it and what it points to are in the sink: the layout gives it an index.json entry. */
  record?: (entry: LockReferrer, bytes: Buffer) => Promise<void>
  /** Give a cosign referrer its tag in the sink too (a registry; a layout records the tag through `record`). */
  tagInSink?: boolean
  /** The digests whose referrers are wanted: the image's and each of its platform manifests'. */
  subjects: string[]
  selection: ReferrerSelection
  /** Names the image in errors. */
  image: string
  /** The registry's index when a platform filter replaced it: the store does not hold it, so a referrer whose `subject` field names it cannot be carried. */
  replaced?: string
  warn?: (message: string) => void
  onBytes?: (n: number) => void
}

/**
 * Every referrer of the subjects, and of those referrers in turn (the
 * signature of an SBOM), that the selection keeps: each copied byte for byte
 * (manifest, config, layers) through the image's Copier into its sink,
 * recorded there, and returned flat for the image's lock entry. A referrer
 * that cannot be fetched fails the image.
 */
export async function pullReferrers(req: PullReferrersRequest): Promise<LockReferrer[]> {
  if (req.selection === 'none') return []
  const out: LockReferrer[] = []
  const seen = new Set<string>(req.subjects)
  let wave = [...req.subjects]
  while (wave.length > 0) {
    const next: string[] = []
    const lists = await Promise.all(wave.map((subject) => findReferrers(req.client, req.repository, subject)))
    for (const [k, subject] of wave.entries()) {
      for (const f of lists[k]) {
        if (seen.has(f.desc.digest)) continue
        const what = `referrer ${f.desc.digest} of ${req.image}`
        const bytes = await req.source.fetchManifest(f.desc)
        if (bytes.length !== f.desc.size)
          throw new FailureError(`${what}: ${bytes.length} bytes, its descriptor says ${f.desc.size}`)
        // A stale or careless fallback index may list a manifest whose subject is another digest: not a referrer of this one.
        const points = referrerDoc(bytes, what).subject?.digest
        if (points !== undefined && points !== subject) continue
        seen.add(f.desc.digest)
        if (points !== undefined && points === req.replaced) {
          // Copying it would copy its subject, the whole upstream index, platforms the filter dropped included.
          req.warn?.(
            `${req.image}: left out referrer ${f.desc.digest}: it refers to the upstream index ${points}, which the platform filter replaced (keep every platform to carry it)`,
          )
          continue
        }
        const artifactType = artifactTypeOf(bytes, what)
        if (!selected(req.selection, artifactType)) continue
        const mediaType = manifestMediaTypeOf(bytes, f.desc.mediaType)
        const refs = req.tagInSink && f.tag ? [f.tag] : []
        const r = await req.copier.copyImage({
          source: req.source,
          root: {bytes, mediaType, digest: f.desc.digest},
          refs,
          label: what,
          onBytes: req.onBytes,
        })
        const entry: LockReferrer = {
          digest: r.digest,
          mediaType,
          artifactType,
          size: bytes.length,
          subject,
          ...(f.tag ? {tag: f.tag} : {}),
        }
        await req.record?.(entry, bytes)
        out.push(entry)
        next.push(r.digest)
      }
    }
    wave = next
  }
  return out
}

function manifestMediaTypeOf(bytes: Buffer, fallback: string): string {
  const own = referrerDoc(bytes, 'referrer').mediaType
  return typeof own === 'string' && own !== '' ? own : fallback || MediaType.ociManifest
}
