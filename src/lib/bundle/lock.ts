/** The files of a bundle folder (the lock's shape is in ../lock.ts). */
export const BUNDLE_FILES = {
  files: 'offline-files.tar.gz',
  packages: 'component-tools.tar.gz',
  images: 'offline-images.tar',
  lock: 'bundle.json',
  sums: 'SHA256SUMS',
} as const

/** Top folder inside each .tar.gz. */
export const TOP_FOLDERS = {files: 'offline-files', packages: 'component-tools'} as const

// The lock's types moved to ../lock.ts; named here too until every importer says so.
export type {BundleLock, LockFile, LockImage, LockReferrer} from '../lock.js'
