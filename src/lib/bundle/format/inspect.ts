import {readFile} from 'node:fs/promises'

import type {LockFile, LockReferrer} from '../../bundle-json.js'
import {BUNDLE_FILES} from './bundle-files.js'
import type {BundleFolder} from './bundle-folder.js'
import {bundleBom, type CycloneDxBom} from './cyclonedx.js'
import {type DeltaSummary, deltaSummary} from './delta.js'

export interface InspectImage {
  ref: string
  digest: string
  mediaType: string
  platforms: string[]
  size: number
  sourceDigest: string | null
  /** Signatures, SBOMs and other artifacts that refer to the image, flat (tag null when found by subject). */
  referrers: (Omit<LockReferrer, 'tag'> & {tag: string | null})[]
}

export interface InspectFile {
  kind: LockFile['kind']
  path: string
  size: number
  sha256: string
  url: string
  /** In a delta: left out, expected from a base. */
  fromBase: boolean
  /** An os-package: its name, version and architecture; null for other files. */
  os: {name: string; version: string; architecture: string} | null
}

export interface InspectTool {
  path: string
  platform: string | null
  size: number
  sha256: string
  /** In a delta: the base's executable, not in this folder (import.sh finds it there). */
  fromBase: boolean
}

/** What a bundle holds, in one shape whatever the bundle (absent values are null, lists may be empty). */
export interface InspectResult {
  name: string
  version: string | null
  images: InspectImage[]
  files: InspectFile[]
  /** The importer carried beside the archives (standalone executables, import.sh). */
  tools: InspectTool[]
  /** A delta: what it carries and what it expects from its bases; null for a whole bundle. */
  delta: DeltaSummary | null
}

/** A bundle's contents from its bundle.json (fast: no archive is read; `verify` checks they match). */
export function inspectBundle(bundle: BundleFolder): InspectResult {
  const {lock} = bundle
  const result: InspectResult = {
    name: lock.name,
    version: lock.version ?? null,
    images: lock.images.map((i) => ({
      ref: i.ref,
      digest: i.digest,
      mediaType: i.mediaType,
      platforms: i.platforms,
      size: i.size,
      sourceDigest: i.sourceDigest ?? null,
      referrers: (i.referrers ?? []).map((r) => ({
        digest: r.digest,
        mediaType: r.mediaType,
        artifactType: r.artifactType,
        size: r.size,
        subject: r.subject,
        tag: r.tag ?? null,
      })),
    })),
    files: lock.files.map((f) => ({
      kind: f.kind,
      path: f.path,
      size: f.size,
      sha256: f.sha256,
      url: f.url,
      fromBase: f.fromBase === true,
      os: f.os ?? null,
    })),
    tools: (lock.tools ?? []).map((t) => ({
      path: t.path,
      platform: t.platform ?? null,
      size: t.size,
      sha256: t.sha256,
      fromBase: t.fromBase === true,
    })),
    delta: null,
  }
  const delta = deltaSummary(lock)
  if (delta) result.delta = delta
  return result
}

/** The bundle's CycloneDX 1.5 bill of materials, from its bundle.json (see cyclonedx.ts). */
export async function inspectBundleBom(
  bundle: BundleFolder,
  tool: {name: string; version: string},
): Promise<CycloneDxBom> {
  // The serial number and the hash are of bundle.json's bytes.
  const bytes = await readFile(bundle.path(BUNDLE_FILES.lock))
  return bundleBom(bundle.lock, bytes, tool)
}
