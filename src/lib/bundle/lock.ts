/** The files of a bundle folder (the lock's shape is in ../lock.ts). */
export const BUNDLE_FILES = {
  files: 'offline-files.tar.gz',
  packages: 'component-tools.tar.gz',
  images: 'offline-images.tar',
  lock: 'bundle.json',
  sums: 'SHA256SUMS',
} as const

/** The importer a bundle carries beside its archives (bundle.json `tools`). */
export const IMPORT_SCRIPT = 'import.sh'

/** File name of the standalone executable for `linux/<arch>`. */
export function executableName(arch: string): string {
  return `airlock-linux-${arch}`
}

/** A name writeBundle may have put there as a tool: a stale one is removed when the bundle is written again without it. */
export function isToolName(name: string): boolean {
  return name === IMPORT_SCRIPT || /^airlock-linux-[a-z0-9]+$/.test(name)
}

/** Top folder inside each .tar.gz. */
export const TOP_FOLDERS = {files: 'offline-files', packages: 'component-tools'} as const

// The lock's types moved to ../lock.ts; named here too until every importer says so.
export type {BundleLock, LockFile, LockImage, LockReferrer, LockTool} from '../lock.js'
