import type {Readable} from 'node:stream'

import type {BundleLock, LockImage, LockReferrer} from '../bundle-json.js'
import type {Descriptor} from '../content/descriptor.js'
import {isDigest} from '../content/digest.js'
import {MediaType} from '../content/media-types.js'
import {MAX_MANIFEST_BYTES} from '../defaults.js'
import {type ParsedManifest, parseManifestJson} from '../graph/parse.js'
import {OciArchive} from '../oci/archive.js'
import {normalizeRegistryHost, parseReference} from '../oci/reference.js'
import {hostComponent} from '../targets/registry/registry-target.js'

/**
 * What the served registry holds, built once at start from the bundle's
 * lock and its indexed `offline-images.tar` (and those of its bases): the
 * repositories with their tags, every manifest's real media type, the
 * referrers of each subject. Blobs stay in the tar; only their offsets are
 * in memory.
 */

export interface Repository {
  name: string
  /** Tag -> manifest digest. */
  tags: Map<string, string>
}

/** Manifests are small documents; a bigger blob is never read as one. */

export class RegistryContent {
  private readonly repos = new Map<string, Repository>()
  /** Real media type by manifest digest, learned on first read (manifests are few and small). */
  private readonly manifestTypes = new Map<string, string | null>()
  private readonly referrers = new Map<string, LockReferrer[]>()
  /** `archives` in lookup order: the bundle first, then its bases. */
  constructor(
    private readonly archives: OciArchive[],
    locks: BundleLock[],
  ) {
    for (const lock of locks) {
      for (const img of lock.images) {
        const ref = parseReference(img.ref)
        // Where a containerd or CRI-O mirror asks (no host), and with the host kept as `import registry --keep-registry-host` names it.
        for (const name of [ref.repository, `${hostComponent(ref.registry)}/${ref.repository}`]) {
          const repo = this.repo(name)
          // Two registries with one path: the host-kept names stay apart; the shorter one answers with the first image listed.
          if (ref.tag && !repo.tags.has(ref.tag)) repo.tags.set(ref.tag, img.digest)
          for (const r of referrersOf(img)) if (r.tag && !repo.tags.has(r.tag)) repo.tags.set(r.tag, r.digest)
        }
        for (const r of referrersOf(img)) {
          const list = this.referrers.get(r.subject) ?? []
          if (!list.some((x) => x.digest === r.digest)) list.push(r)
          this.referrers.set(r.subject, list)
        }
        // bundle.json knows the real type of each image's top manifest.
        this.manifestTypes.set(img.digest, img.mediaType)
      }
    }
  }

  private repo(name: string): Repository {
    let r = this.repos.get(name)
    if (!r) {
      r = {name, tags: new Map()}
      this.repos.set(name, r)
    }
    return r
  }

  /** The repository `name`, or with a containerd mirror's `ns` (the source registry) the host-kept one first. */
  repository(name: string, ns?: string): Repository | undefined {
    if (ns) {
      const kept = this.repos.get(`${hostComponent(normalizeRegistryHost(ns))}/${name}`)
      if (kept) return kept
    }
    return this.repos.get(name)
  }

  /** Every repository name, sorted (`_catalog`). */
  repositoryNames(): string[] {
    return [...this.repos.keys()].sort()
  }

  private locate(digest: string): {archive: OciArchive; offset: number; size: number} | undefined {
    if (!isDigest(digest)) return undefined
    const name = OciArchive.blobName(digest)
    for (const archive of this.archives) {
      const e = archive.entries.get(name)
      if (e) return {archive, offset: e.offset, size: e.size}
    }
    return undefined
  }

  /** Size of a blob (any content, manifests included), or undefined when the bundle lacks it. */
  blobSize(digest: string): number | undefined {
    return this.locate(digest)?.size
  }

  /** Bytes `start`..`end` (inclusive) of a blob, streamed from the tar. */
  openBlob(digest: string, start: number, end: number): Readable {
    const b = this.locate(digest)
    if (!b) throw new Error(`no blob ${digest}`)
    return b.archive.streamRange(b.offset + start, end - start + 1)
  }

  private async readSmall(digest: string): Promise<Buffer | undefined> {
    const b = this.locate(digest)
    if (!b || b.size > MAX_MANIFEST_BYTES) return undefined
    return b.archive.readEntry(OciArchive.blobName(digest), MAX_MANIFEST_BYTES)
  }

  /**
   * A manifest by digest with its real media type: the document's own
   * `mediaType` (index.json lists Docker manifests under their OCI twin
   * type, so it is never asked), else `bundle.json`'s, else its shape.
   * Undefined when the digest is not a manifest of the bundle (a layer, a
   * config, or nothing).
   */
  async manifest(digest: string): Promise<{bytes: Buffer; mediaType: string} | undefined> {
    if (this.manifestTypes.get(digest) === null) return undefined
    const bytes = await this.readSmall(digest)
    if (!bytes) return undefined
    const own = manifestKindOf(bytes)
    if (own === undefined) {
      this.manifestTypes.set(digest, null)
      return undefined
    }
    const mediaType =
      own.mediaType ??
      this.manifestTypes.get(digest) ??
      (own.kind === 'index' ? MediaType.ociIndex : MediaType.ociManifest)
    this.manifestTypes.set(digest, mediaType)
    return {bytes, mediaType}
  }

  /**
   * The referrers of `subject` as an OCI image index's descriptors, each
   * with its artifactType and the annotations of its manifest. Only
   * manifests whose own `subject` names it, as a registry's referrers API
   * answers: a cosign signature found by its `sha256-<hex>.sig` tag (no
   * `subject` field) stays reachable by that tag instead.
   */
  async referrersOf(subject: string): Promise<Descriptor[]> {
    const out: Descriptor[] = []
    for (const r of this.referrers.get(subject) ?? []) {
      const bytes = await this.readSmall(r.digest).catch(() => undefined)
      let parsed: ParsedManifest
      try {
        if (!bytes) continue
        parsed = parseManifestJson(bytes)
      } catch {
        continue
      }
      const doc = parsed.kind === 'index' ? parsed.index : parsed.manifest
      if (doc.subject?.digest !== subject) continue
      const d: Descriptor = {mediaType: r.mediaType, digest: r.digest, size: r.size}
      if (r.artifactType) d.artifactType = r.artifactType
      if (doc.annotations && typeof doc.annotations === 'object') d.annotations = doc.annotations
      out.push(d)
    }
    return out
  }
}

/** read-lock checked each referrer's shape (digests included). */
function referrersOf(img: LockImage): LockReferrer[] {
  return img.referrers ?? []
}

/**
 * What manifest bytes say of themselves, read with the one manifest parser:
 * the kind and the declared `mediaType` (OCI allows leaving it out);
 * undefined when the bytes are not a manifest or index. A config is JSON
 * with a `config` field too, but no schemaVersion 2.
 */
function manifestKindOf(bytes: Buffer): {kind: 'index' | 'manifest'; mediaType?: string} | undefined {
  let parsed: ParsedManifest
  try {
    parsed = parseManifestJson(bytes)
  } catch {
    return undefined
  }
  const doc = parsed.kind === 'index' ? parsed.index : parsed.manifest
  if (doc.schemaVersion !== 2) return undefined
  return {kind: parsed.kind, mediaType: parsed.mediaType}
}
