import type {ImageReference} from '../oci/reference.js'

/** Where an entry came from, for error messages. */
export interface SourcePos {
  line: number
  column: number
}

export interface RegistrySettings {
  host: string
  insecure: boolean
  /** Absolute path (relative ones are resolved against the manifest's folder). */
  caFile?: string
}

export type ReferrerSelection = 'all' | 'none' | {artifactTypes: string[]}

export interface ImageEntry {
  /** Full normalized reference, e.g. `docker.io/library/nginx:1.25.3`. */
  name: string
  ref: ImageReference
  /** Platforms to keep (`os/arch` or `os/arch/variant`), or 'all'. */
  platforms: string[] | 'all'
  pos: SourcePos
}

/** A binary (-> offline-files) or a package given by URL (-> component-tools). */
export interface UrlFileEntry {
  kind: 'binary' | 'package'
  url: string
  /** Lowercase hex, when given inline. */
  sha256?: string
  checksumUrl?: string
  /** Mirrored path: host[:port]/path, or the entry's `path:`. */
  path: string
  pos: SourcePos
}

export interface ChartEntry {
  kind: 'chart'
  /** HTTP(S) chart repository URL (has an index.yaml), or undefined for OCI. */
  repo?: string
  /** `oci://` reference, for charts in a registry. */
  ociRef?: string
  name: string
  version: string
  /** `charts/<name>-<version>.tgz` */
  path: string
  pos: SourcePos
}

export type PackageEntry = UrlFileEntry | ChartEntry

export interface Manifest {
  /** Path of the manifest file as given. */
  file: string
  /** Folder of the manifest file, for relative paths. */
  dir: string
  name: string
  version?: string
  platforms: string[]
  registries: RegistrySettings[]
  /** Which referrers of each image a pull copies: all (the default, also when absent), none, or those of these artifact types. */
  referrers?: ReferrerSelection
  images: ImageEntry[]
  binaries: UrlFileEntry[]
  packages: PackageEntry[]
}
