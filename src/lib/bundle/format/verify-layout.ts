import type {BundleLock} from '../../bundle-json.js'
import type {Descriptor, ImageIndex} from '../../content/descriptor.js'
import {isDigest} from '../../content/digest.js'
import {manifestGaps, type ParsedManifest, parseLayoutIndex, parseManifestJson} from '../../graph/parse.js'
import {type GraphVisitor, walkGraph} from '../../graph/walk.js'
import {parseCosignTag} from '../../oci/cosign.js'
import {layoutEntryMediaType, REF_NAME_ANNOTATION, REFERRER_SUBJECT_ANNOTATION} from '../../oci/layout.js'
import type {VerificationRun} from './verification-run.js'

/** What one read of the oci-archive found, for the layout check. */
export interface LayoutScan {
  /** The archive's name, for each problem line. */
  name: string
  /** index.json's bytes, when there was one. */
  indexBytes?: Buffer
  /** Each intact blob's size, by digest. */
  blobs: Map<string, number>
  /** Blobs whose bytes do not hash to their name: digest -> the digest they have. */
  corrupt: Map<string, string>
  /** JSON blobs not kept, being neither manifest nor index (configs): named, should an index point at one. */
  otherJson: Set<string>
}

/** What the check of an image's referrers reads: the layout walked so far, and where its problems go. */
interface ReferrerCheck {
  name: string
  problems: string[]
  json: Map<string, Buffer>
  /** index.json's entries for referrers, by digest. */
  entries: Map<string, Descriptor>
  walk: (d: Descriptor, of: string) => Promise<void>
}

/** index.json against bundle.json, then every reference reachable from it; blobs nothing references are extra. */
export async function checkLayout(run: VerificationRun, scan: LayoutScan): Promise<void> {
  const {name, indexBytes, blobs, corrupt, otherJson} = scan
  const {lock} = run.bundle
  const {json} = run
  const problems = run.problems('images')
  const named = new Set<string>()
  const reportCorrupt = (digest: string, where: string): void => {
    if (named.has(digest)) return
    named.add(digest)
    problems.push(`${name}: ${where}: blob ${digest} is corrupt: expected ${digest}, got ${corrupt.get(digest)}`)
  }
  if (!indexBytes) return void problems.push(`${name}: index.json is missing`)
  let index: ImageIndex
  try {
    index = parseLayoutIndex(indexBytes)
  } catch (err) {
    return void problems.push(`${name}: index.json is not a valid OCI index: ${(err as Error).message}`)
  }
  const byRef = new Map<string, Descriptor[]>()
  const referrerEntries = new Map<string, Descriptor>()
  const listedReferrers = new Set(lock.images.flatMap((i) => (i.referrers ?? []).map((r) => r.digest)))
  for (const d of index.manifests) {
    const ref = d.annotations?.[REF_NAME_ANNOTATION]
    if (ref) byRef.set(ref, [...(byRef.get(ref) ?? []), d])
    else if (listedReferrers.has(d.digest) && d.annotations?.[REFERRER_SUBJECT_ANNOTATION])
      referrerEntries.set(d.digest, d)
    else
      problems.push(
        `${name}: index.json entry ${d.digest} has no ${REF_NAME_ANNOTATION} annotation and is not a referrer bundle.json lists`,
      )
  }
  const lockRefs = new Set(lock.images.map((i) => i.ref))
  for (const [ref, ds] of byRef) {
    if (!lockRefs.has(ref)) problems.push(`${name}: index.json names ${ref}, which bundle.json does not list`)
    else if (ds.length > 1) problems.push(`${name}: index.json names ${ref} ${ds.length} times`)
  }
  const reached = new Set<string>()
  const fromBase = new Set((lock.blobs ?? []).filter((b) => b.fromBase).map((b) => b.digest))
  const referenced = new Set<string>()
  const visitor: GraphVisitor<string> = {
    visit: (d, of, edge) => {
      if (typeof d?.digest !== 'string' || !isDigest(d.digest)) {
        problems.push(`${name}: ${of}: a reference without a sha256 digest`)
        return false
      }
      referenced.add(d.digest)
      const size = blobs.get(d.digest)
      if (size === undefined && corrupt.has(d.digest)) {
        reportCorrupt(d.digest, of)
        return false
      }
      if (size === undefined) {
        // A delta's lock names what it leaves to its bases: absent here by design, counted, not a problem.
        if (!edge?.optional && !fromBase.has(d.digest)) problems.push(`${name}: ${of}: blob ${d.digest} is missing`)
        return false
      }
      if (fromBase.has(d.digest))
        problems.push(`${name}: ${of}: blob ${d.digest} is carried, but bundle.json says it is left to the bases`)
      if (size !== d.size)
        problems.push(`${name}: ${of}: blob ${d.digest} has ${size} bytes, the reference says ${d.size}`)
      if (reached.has(d.digest)) return false
      reached.add(d.digest)
      return true
    },
    bytes: (d, of) => {
      const bytes = json.get(d.digest)
      if (bytes) return bytes
      if (otherJson.has(d.digest)) problems.push(`${name}: ${of}: ${d.digest} is not an image manifest or index`)
      else problems.push(`${name}: ${of}: manifest ${d.digest} is not valid JSON`)
      return undefined
    },
    invalid: (d, of, err) => {
      problems.push(
        err.reason === 'json'
          ? `${name}: ${of}: manifest ${d.digest} is not valid JSON`
          : `${name}: ${of}: ${d.digest} is not an image manifest or index`,
      )
    },
    node: (d, {parsed}, of) => {
      for (const gap of manifestGaps(parsed))
        problems.push(`${name}: ${of}: ${parsed.kind === 'index' ? 'index' : 'manifest'} ${d.digest} has no ${gap}`)
    },
    label: (of, edge) => {
      if (edge.role === 'manifest') {
        const p = edge.desc.platform
        return `${of} > ${p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : 'manifest'} ${edge.desc.digest}`
      }
      if (edge.role === 'layer') return `${of} layer ${edge.index}`
      return `${of} ${edge.role}`
    },
  }
  const walk = (d: Descriptor, of: string): Promise<void> => walkGraph(d, of, visitor)
  for (const img of lock.images) {
    const ds = byRef.get(img.ref)
    if (!ds) {
      problems.push(`${name}: ${img.ref} (listed in bundle.json) is not in index.json`)
      continue
    }
    const d = ds[0]
    if (d.digest !== img.digest)
      problems.push(`${name}: ${img.ref}: index.json has ${d.digest}, bundle.json says ${img.digest}`)
    // Docker content is listed under its OCI twin in index.json (see layoutEntryMediaType).
    if (d.mediaType !== img.mediaType && d.mediaType !== layoutEntryMediaType(img.mediaType))
      problems.push(`${name}: ${img.ref}: index.json has media type ${d.mediaType}, bundle.json says ${img.mediaType}`)
    await walk(d, img.ref)
  }
  const referrers: ReferrerCheck = {name, problems, json, entries: referrerEntries, walk}
  for (const img of lock.images) await checkReferrers(referrers, img)
  for (const b of lock.blobs ?? []) {
    // Under a manifest left to the bases nothing is visited here; what is carried must be reached.
    if (!b.fromBase && !referenced.has(b.digest))
      problems.push(`${name}: blob ${b.digest} is listed in bundle.json's blobs but no image refers to it`)
  }
  for (const digest of [...blobs.keys()].sort())
    if (!reached.has(digest))
      problems.push(`${name}: blobs/sha256/${digest.slice(7)}: extra blob, no image references it`)
  for (const digest of [...corrupt.keys()].sort()) reportCorrupt(digest, `blobs/sha256/${digest.slice(7)}`)
}

/**
 * The referrers bundle.json lists under an image: each has its index.json
 * entry with the same subject, is walked like an image (every blob there and
 * of the right size), and points at something of this image: the image (or
 * the index it was filtered from), one of its platform manifests, or another
 * of its referrers; the manifest's own `subject` field, or else its cosign
 * tag, must name that digest.
 */
async function checkReferrers(check: ReferrerCheck, img: BundleLock['images'][number]): Promise<void> {
  const {name, problems, json, entries, walk} = check
  const referrers = img.referrers ?? []
  if (referrers.length === 0) return
  const targets = new Set([
    img.digest,
    ...(img.sourceDigest ? [img.sourceDigest] : []),
    ...referrers.map((r) => r.digest),
  ])
  // An unreadable root: the image walk already reported it.
  const root = parsedOrUndefined(json.get(img.digest))
  if (root?.kind === 'index' && Array.isArray(root.index.manifests))
    for (const m of root.index.manifests) targets.add(m.digest)
  for (const r of referrers) {
    const of = `${img.ref}: referrer ${r.digest}`
    const entry = entries.get(r.digest)
    if (!entry) problems.push(`${name}: ${of} has no index.json entry`)
    else if (entry.annotations?.[REFERRER_SUBJECT_ANNOTATION] !== r.subject) {
      problems.push(
        `${name}: ${of}: index.json says its subject is ${entry.annotations?.[REFERRER_SUBJECT_ANNOTATION]}, bundle.json says ${r.subject}`,
      )
    }
    if (!targets.has(r.subject))
      problems.push(`${name}: ${of}: its subject ${r.subject} is not this image, one of its manifests or referrers`)
    await walk({mediaType: r.mediaType, digest: r.digest, size: r.size}, of)
    const parsed = parsedOrUndefined(json.get(r.digest), r.mediaType)
    if (!parsed) continue
    const doc = parsed.kind === 'index' ? parsed.index : parsed.manifest
    const artifactType =
      doc.artifactType ?? (parsed.kind === 'manifest' ? parsed.manifest.config?.mediaType : undefined)
    if (artifactType !== r.artifactType)
      problems.push(`${name}: ${of}: its artifact type is ${artifactType}, bundle.json says ${r.artifactType}`)
    const points = doc.subject?.digest ?? (r.tag ? parseCosignTag(r.tag)?.digest : undefined)
    if (points === undefined)
      problems.push(`${name}: ${of}: has no subject field and no cosign tag that names what it refers to`)
    else if (points !== r.subject) problems.push(`${name}: ${of}: refers to ${points}, bundle.json says ${r.subject}`)
  }
}

/**
 * Whether JSON bytes may be a manifest or an index (what the graph walk
 * reads): an object with any field of one. Image configs have none of them
 * (their `config` is the container's), nor do signature payloads.
 */
export function isManifestOrIndex(bytes: Buffer): boolean {
  let doc: unknown
  try {
    doc = JSON.parse(bytes.toString('utf8'))
  } catch {
    return true // the walk reports it as not valid JSON, should anything point at it
  }
  return (
    typeof doc !== 'object' ||
    doc === null ||
    Array.isArray(doc) ||
    ['schemaVersion', 'mediaType', 'manifests', 'layers'].some((k) => k in doc)
  )
}

/** Manifest bytes parsed, or undefined when they are not a manifest (reported by the walk). */
function parsedOrUndefined(bytes: Buffer | undefined, mediaType?: string): ParsedManifest | undefined {
  if (!bytes) return undefined
  try {
    return parseManifestJson(bytes, mediaType)
  } catch {
    return undefined
  }
}
