import type {LimitFunction} from 'p-limit'

import {combineFailures} from '../errors.js'
import type {LowSpeed} from '../fetch/low-speed.js'
import type {ConnectionOptions} from '../fetch/tls.js'
import type {RegistryClient} from '../registry/client.js'
import type {Store} from '../store/store.js'
import type {Progress} from '../ui/progress.js'

/** What both halves of a pull (images, files) share. */
export interface PullContext extends Required<Pick<ConnectionOptions, 'caFiles'>> {
  store: Store
  /** The one pool of downloads, `--concurrency` wide, shared by blobs and files. */
  pool: LimitFunction
  concurrency: number
  progress: Progress
  /** `--platform` values; when set they override the manifest's platforms. */
  platforms?: string[]
  /**
   * The client for a registry host, one per host for the whole pull (images
   * and OCI charts share its connections and tokens), set up from the
   * manifest's registry settings, --ca-file and the credentials flags.
   */
  registry: (host: string) => RegistryClient
  /** --low-speed-limit/--low-speed-time; unset: the download routine's default. */
  lowSpeed?: LowSpeed
  signal?: AbortSignal
}

/**
 * The values of settled pulls, or every failure at once (the only one
 * itself, several as one FailureGroup listing them all): every entry gets
 * its chance before the pull reports.
 */
export function valuesOrFirstFailure<T>(settled: PromiseSettledResult<T>[]): T[] {
  const failures = settled
    .filter((s): s is PromiseRejectedResult => s.status === 'rejected')
    .map((s) => s.reason as unknown)
  if (failures.length > 0) throw combineFailures(failures)
  return settled.map((s) => (s as PromiseFulfilledResult<T>).value)
}
