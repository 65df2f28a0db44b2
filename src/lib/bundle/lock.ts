/**
 * `bundle.json`, the lock: what a bundle (and a store) holds, with every
 * digest. Its shape is fixed by the contract.
 */
export interface LockImage {
  /** Full normalized reference, e.g. `docker.io/library/nginx:1.25.3`. */
  ref: string
  /** Digest of the manifest or index stored for this ref. */
  digest: string
  mediaType: string
  /** Platforms kept, e.g. `linux/amd64`, `linux/arm/v7`. */
  platforms: string[]
  /** Bytes of the manifest(s), configs and layers of this image. */
  size: number
  /** When a platform filter rewrote an index: the digest of the source index. */
  sourceDigest?: string
}

export interface LockFile {
  kind: 'binary' | 'package' | 'chart'
  url: string
  /** Mirrored path, relative to `files/` (binaries) or `packages/` (packages, charts). */
  path: string
  size: number
  sha256: string
}

export interface BundleLock {
  apiVersion: 'airlock/v1'
  name: string
  version?: string
  images: LockImage[]
  files: LockFile[]
}

export const BUNDLE_FILES = {
  files: 'offline-files.tar.gz',
  packages: 'component-tools.tar.gz',
  images: 'offline-images.tar',
  lock: 'bundle.json',
  sums: 'SHA256SUMS',
} as const

/** Top folder inside each .tar.gz. */
export const TOP_FOLDERS = {files: 'offline-files', packages: 'component-tools'} as const
