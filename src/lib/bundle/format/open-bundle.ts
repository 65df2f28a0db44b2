import type {LockFile} from '../../bundle-json.js'
import {type ArchiveKind, bundleBatches, type BundleEntry, lockFilesOf} from './archive-entries.js'
import {BundleFolder, openBundleFolder} from './bundle-folder.js'
import {type ArchiveScope, importedSumsProblems, verifyBundle, type VerifyOptions, type VerifyReport} from './verify.js'

/**
 * A bundle on disk as a value: opened once (`openBundle`), then passed to
 * import, serve, inspect and verify instead of a folder and its lock. Its
 * folder, bundle.json and parts are `BundleFolder`'s; its archives' entries,
 * its sums and its verification hang off it here.
 */
export class Bundle extends BundleFolder {
  /** bundle.json's files that one `.tar.gz` carries (a delta's left-out files in neither). */
  filesOf(kind: ArchiveKind): LockFile[] {
    return lockFilesOf(this.lock, kind)
  }

  /** One `.tar.gz` read as checked entries, in batches (see bundleBatches); `digests` receives each part's sha256. */
  entries(kind: ArchiveKind, digests?: Map<string, string>): AsyncGenerator<BundleEntry[]> {
    return bundleBatches(this, kind, digests)
  }

  /** SHA256SUMS held to what an import read itself (`read`: each part's sha256) of the archives in `only`. */
  sumsProblems(only: ArchiveScope[], read: Map<string, string>): Promise<string[]> {
    return importedSumsProblems(this, only, read)
  }

  /** Every check of the folder (verify.ts), each problem collected. */
  verify(opts: VerifyOptions = {}): Promise<VerifyReport> {
    return verifyBundle(this, opts)
  }
}

/** Open a bundle folder: its bundle.json read and checked (a BundleError, exit 2, when missing or malformed). */
export async function openBundle(dir: string): Promise<Bundle> {
  const folder = await openBundleFolder(dir)
  return new Bundle(folder.dir, folder.lock, folder.lockSha256)
}
