import type {LockFile} from '../bundle/lock.js'
import type {Manifest} from '../manifest/types.js'
import type {PullContext} from './context.js'

export interface FilePullResult {
  kind: 'binary' | 'package' | 'chart'
  url: string
  path: string
  size: number
  sha256: string
  /** true when the store already had it and nothing was downloaded. */
  reused: boolean
  bytesFetched: number
  /** The file's entry for records.json / bundle.json. */
  lock: LockFile
}

/** Placeholder until file downloads land. */
export async function pullFiles(manifest: Manifest, _ctx: PullContext): Promise<FilePullResult[]> {
  if (manifest.binaries.length + manifest.packages.length > 0) throw new Error('pulling files is not implemented yet')
  return []
}
