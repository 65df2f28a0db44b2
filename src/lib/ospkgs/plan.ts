/**
 * What a resolver of one OS package type (apt, rpm) hands the framework:
 * per manifest entry, the repository's record and the files to mirror. The
 * framework (`pull.ts`) fetches them, records them and bundles them; the
 * resolver only reads the repository's metadata and computes the closure.
 * Type-neutral: nothing here knows apt from rpm.
 */
import type {LockOsPackage, LockOsRepository} from '../bundle-json.js'
import type {OsPackageEntry} from '../manifest/types.js'
import type {Progress} from '../ui/progress.js'

/** One file of a mirrored repository, known before its download. */
export interface PlannedFile {
  kind: 'os-metadata' | 'os-package'
  /** Where the bytes come from. */
  url: string
  /** Mirrored path, relative to the store's `packages/`: `<host>/<path>` of `url`. */
  path: string
  size: number
  /** Lowercase hex the file must hash to. */
  sha256: string
  /** An `os-package`: which package it is (for inspect and the bill of materials). */
  os?: LockOsPackage
  /**
   * Run on the complete, hash-checked file before it becomes visible under
   * its final name (rpm: the package's OpenPGP header signature with
   * gpgKey). Throw an IntegrityError to refuse it: nothing lands.
   */
  check?: (file: string) => Promise<void>
}

/** One manifest entry, resolved. */
export interface OsRepositoryPlan {
  entry: OsPackageEntry
  /** The lock's record of the repository; the framework adds `key` and `files`. */
  repository: Omit<LockOsRepository, 'key' | 'files'>
  /**
   * Metadata the resolver already put into the store while reading it
   * (signed files verified before they became visible, indexes by their
   * digests): recorded, not fetched again.
   */
  metadata: PlannedFile[]
  /** The closure's packages, fetched by the framework through the one download routine. */
  packages: PlannedFile[]
}

/** A document whose digest is not known in advance (InRelease, repomd.xml): what fetchSigned gives back. */
export interface SignedFile {
  bytes: Buffer
  /** Mirrored path, relative to `packages/`. */
  path: string
  url: string
  sha256: string
  size: number
}

/** What the framework gives a resolver to read a repository with; everything lands in the store verified. */
export interface OsFetchContext {
  /**
   * A file whose sha256 (and size) the signed metadata gives: fetched through
   * downloadVerified into the store (kept when already there), and its
   * absolute path in the store returned.
   */
  fetchVerified(file: Omit<PlannedFile, 'kind' | 'os'>, label: string): Promise<string>
  /**
   * A small document whose trust comes from a signature: fetched whole
   * (capped at maxBytes), given to `verify` (which throws to refuse it), and
   * only then written into the store at `path`. undefined when the server
   * answers 404 and `optional` is set.
   */
  fetchSigned(req: {
    url: string
    path: string
    label: string
    maxBytes: number
    optional?: boolean
    verify: (bytes: Buffer) => Promise<void>
  }): Promise<SignedFile | undefined>
  /** Put bytes the resolver has verified (a detached signature it checked) into the store at `path`. */
  putVerified(req: {url: string; path: string; bytes: Buffer}): Promise<SignedFile>
  /** Fetch a small document (a detached signature) without storing it; undefined on 404 when optional. */
  fetchBytes(req: {url: string; label: string; maxBytes: number; optional?: boolean}): Promise<Buffer | undefined>
  /** The absolute store path of a mirrored path. */
  storePath(path: string): string
  progress: Progress
  signal?: AbortSignal
}

/**
 * Resolve every entry of one type together (as apt or dnf would with all of
 * them configured), each entry's packages from the whole set's closure.
 */
export type OsResolver<E extends OsPackageEntry = OsPackageEntry> = (
  entries: E[],
  ctx: OsFetchContext,
) => Promise<OsRepositoryPlan[]>
