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
