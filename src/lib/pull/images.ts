import type {LockImage} from '../bundle/lock.js'
import type {Manifest} from '../manifest/types.js'
import type {PullContext} from './context.js'

export interface ImagePullResult {
  ref: string
  digest: string
  mediaType: string
  platforms: string[]
  bytesFetched: number
  bytesReused: number
  /** The image's entry for records.json / bundle.json. */
  lock: LockImage
}

/** Placeholder until the registry client lands. */
export async function pullImages(manifest: Manifest, _ctx: PullContext): Promise<ImagePullResult[]> {
  if (manifest.images.length > 0) throw new Error('pulling images is not implemented yet')
  return []
}
