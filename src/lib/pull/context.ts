import type {LimitFunction} from 'p-limit'

import type {RegistryClient} from '../registry/client.js'

import type {Store} from '../store/store.js'
import type {Progress} from '../ui/progress.js'

/** What both halves of a pull (images, files) share. */
export interface PullContext {
  store: Store
  /** The one pool of downloads, `--concurrency` wide, shared by blobs and files. */
  pool: LimitFunction
  concurrency: number
  progress: Progress
  /** `--ca-file` values, trusted for every host on top of the system CAs. */
  caFiles: string[]
  /** `--platform` values; when set they override the manifest's platforms. */
  platforms?: string[]
  /**
   * The client for a registry host, one per host for the whole pull (images
   * and OCI charts share its connections and tokens), set up from the
   * manifest's registry settings, --ca-file and the credentials flags.
   */
  registry: (host: string) => RegistryClient
  signal?: AbortSignal
}

/**
 * The values of settled pulls, or the first failure with the others listed
 * under it: every entry gets its chance before the pull reports.
 */
export function valuesOrFirstFailure<T>(settled: PromiseSettledResult<T>[]): T[] {
  const failures = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected').map((s) => s.reason as Error)
  if (failures.length > 0) {
    const first = failures[0]
    if (failures.length > 1 && first instanceof Error && 'details' in first && Array.isArray(first.details)) {
      first.details.push(...failures.slice(1).map((e) => `also: ${e.message}`))
    }
    throw first
  }
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value)
}
