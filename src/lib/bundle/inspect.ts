import type {LockFile} from './lock.js'
import {readBundleLock} from './read-lock.js'

export interface InspectImage {
  ref: string
  digest: string
  mediaType: string
  platforms: string[]
  size: number
  sourceDigest: string | null
}

export interface InspectFile {
  kind: LockFile['kind']
  path: string
  size: number
  sha256: string
  url: string
}

/** What a bundle holds, in one shape whatever the bundle (absent values are null, lists may be empty). */
export interface InspectResult {
  name: string
  version: string | null
  images: InspectImage[]
  files: InspectFile[]
}

/** A bundle's contents from its bundle.json (fast: no archive is read; `verify` checks they match). */
export async function inspectBundle(dir: string): Promise<InspectResult> {
  const lock = await readBundleLock(dir)
  return {
    name: lock.name,
    version: lock.version ?? null,
    images: lock.images.map((i) => ({
      ref: i.ref,
      digest: i.digest,
      mediaType: i.mediaType,
      platforms: i.platforms,
      size: i.size,
      sourceDigest: i.sourceDigest ?? null,
    })),
    files: lock.files.map((f) => ({kind: f.kind, path: f.path, size: f.size, sha256: f.sha256, url: f.url})),
  }
}
