import type {ImageReference} from '../oci/reference.js'
import type {TagSelection} from './tag-selection.js'

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
  /** The field path of a reference written without tag or digest, which takes `latest` (validate warns of it). */
  latestAssumed?: string
}

/**
 * An `images` entry that names a repository and a tag selection instead of
 * one tag; `lock` and every pull resolve it against the registry's tag list.
 */
export interface ImageSelection {
  /** Registry as references name it: `docker.io`, `127.0.0.1:5001`. */
  registry: string
  /** Repository path: `library/nginx`. */
  repository: string
  tags: TagSelection
  /** As ImageEntry.platforms; applies to every selected tag. */
  platforms: string[] | 'all'
  /** The entry's field path, e.g. `spec.images[2]`, and where its `tags` are. */
  field: string
  pos: SourcePos
}

/** A `spec.repositories` entry: the repositories of a registry's catalog whose path matches, each with a tag selection. */
export interface RepositorySelection {
  registry: string
  include?: string
  exclude?: string
  tags: TagSelection
  platforms: string[] | 'all'
  /** e.g. `spec.repositories[0]` */
  field: string
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

/** Fields every `spec.osPackages` entry has, whatever its type. */
interface OsPackageEntryBase {
  /** The repository URL, without a trailing slash. */
  url: string
  /** Mirrored base path: `<host>/<path>` of the URL (see mirroredBase). */
  path: string
  /** In the type's own names: apt amd64/arm64, rpm x86_64/aarch64 (noarch added). */
  architectures: string[]
  packages: string[]
  /** e.g. `spec.osPackages[0]` */
  field: string
  pos: SourcePos
}

/** A `type: apt` entry: a Debian-style repository (dists/ and pool/ under url). */
export interface AptOsPackageEntry extends OsPackageEntryBase {
  type: 'apt'
  suites: string[]
  components: string[]
  /** Absolute path of the OpenPGP public key(s), binary or armored. */
  keyring: string
  recommends: boolean
}

/** A `type: rpm` entry: a repository with repodata/ under url. */
export interface RpmOsPackageEntry extends OsPackageEntryBase {
  type: 'rpm'
  /** Absolute path of the OpenPGP public key(s) every package must be signed with. */
  gpgKey: string
}

export type OsPackageEntry = AptOsPackageEntry | RpmOsPackageEntry
export type OsPackageType = OsPackageEntry['type']

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
  /** Entries naming one image. */
  images: ImageEntry[]
  /** Entries naming a repository and a tag selection (resolved by select/resolve.ts); none when absent. */
  selections?: ImageSelection[]
  repositories?: RepositorySelection[]
  binaries: UrlFileEntry[]
  packages: PackageEntry[]
  /** `spec.osPackages`; none when absent. */
  osPackages?: OsPackageEntry[]
}
