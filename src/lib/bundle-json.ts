/**
 * `bundle.json`, the lock: what a bundle holds, with every digest. The
 * store's `records.json` has the same shape. Types only, fixed by the
 * contract; below both the store and the bundle.
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
  /** Artifacts that refer to this image, one of its platform manifests or another of them (signatures, SBOMs), flat. */
  referrers?: LockReferrer[]
}

/** A referrer carried with its image (contract: "Signatures, attestations and other referrers"). */
export interface LockReferrer {
  /** Digest of the referrer's manifest. */
  digest: string
  mediaType: string
  /** The manifest's own artifactType, else its config's media type (the OCI rule). */
  artifactType: string
  /** Bytes of the referrer's manifest (a descriptor's size). */
  size: number
  /** The digest it points at: the image, one of its platform manifests, or another referrer. */
  subject: string
  /** The tag it was found under (cosign's `sha256-<hex>.sig`, `.att`, `.sbom`); none for a referrer found by its subject field. */
  tag?: string
}

/**
 * `os-metadata`: a signed OS repository's metadata (apt InRelease, Release,
 * Release.gpg, Packages indexes; rpm repomd.xml and what it lists) or the
 * entry's keyring; `os-package`: a .deb or .rpm of a closure. Both live under
 * `packages/` like packages and charts (see docs/os-packages.md).
 */
export type LockFileKind = 'binary' | 'package' | 'chart' | 'os-metadata' | 'os-package'

export interface LockFile {
  kind: LockFileKind
  url: string
  /** Mirrored path, relative to `files/` (binaries) or `packages/` (packages, charts, OS repositories). */
  path: string
  size: number
  sha256: string
  /** In a delta: left out of the archives, expected from a base (the target already holds it). */
  fromBase?: true
  /** An `os-package`: the package it is, as its index names it. */
  os?: LockOsPackage
}

/** What an `os-package` file is. */
export interface LockOsPackage {
  name: string
  version: string
  /** apt: amd64, arm64, all; rpm: x86_64, aarch64, noarch. */
  architecture: string
}

/**
 * One `spec.osPackages` entry as pulled: where its repository is mirrored
 * and what a node needs to use it. Its files are in `files[]` (kinds
 * `os-metadata` and `os-package`); `files` here names their paths.
 */
export interface LockOsRepository {
  type: 'apt' | 'rpm'
  /** The upstream repository URL, as the manifest gives it (no trailing slash). */
  url: string
  /** Mirrored base path: `<host>/<path>` of the URL, relative to `packages/`. */
  path: string
  /** apt only. */
  suites?: string[]
  components?: string[]
  architectures: string[]
  /** Path (in `files[]`) of the public key(s) a node checks the repository with: the apt keyring, the rpm gpgKey. */
  key: string
  /** The packages the manifest asked for (the closure is in `files`). */
  packages: string[]
  /** Every path of `files[]` this repository needs, sorted. */
  files: string[]
}

/** One manifest, index, config or layer of the bundle's images (the whole graph, not only what a delta carries). */
export interface LockBlob {
  digest: string
  mediaType: string
  size: number
  /** In a delta: left out of offline-images.tar, expected from a base. */
  fromBase?: true
}

/** A bundle or inventory a delta was built against (`--since`). */
export interface LockBase {
  name: string
  version?: string
  /** sha256 (64 hex) of the base's bundle.json or inventory file. */
  lockSha256: string
}

/** A file carried beside the archives for the seed node: the standalone executable, import.sh. */
export interface LockTool {
  /** Relative to the bundle folder. */
  path: string
  /** `os/arch` of an executable. */
  platform?: string
  size: number
  sha256: string
  /** In a delta: an executable a base carries with these bytes, left out of this folder (import.sh finds it in the base's). */
  fromBase?: true
}

export interface BundleLock {
  apiVersion: 'airlock/v1'
  name: string
  version?: string
  images: LockImage[]
  files: LockFile[]
  /** Absent when the bundle carries no tools (`--no-importer`, or a bundle written before tools existed). */
  tools?: LockTool[]
  /** Every digest of the images' graphs, sorted; absent in bundles written before deltas existed. */
  blobs?: LockBlob[]
  /** Present in a delta: the bases it leaves content to. */
  base?: LockBase[]
  /** The OS package repositories the files of kinds os-metadata and os-package make up; absent when none. */
  osRepositories?: LockOsRepository[]
}
