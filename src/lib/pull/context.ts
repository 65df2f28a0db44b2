import type {LimitFunction} from 'p-limit'

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
  /** Registry credentials from flags; otherwise the Docker config is read. */
  username?: string
  password?: string
  signal?: AbortSignal
}
