import {createHash, type Hash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'
import {Transform, type TransformCallback} from 'node:stream'

import {SEQUENTIAL_READ_BYTES} from '../defaults.js'
import {IntegrityError} from '../errors.js'

/** The sha256 (`sha256:<hex>`) and size of a file on disk, or undefined when it is missing or not a regular file. */
export async function hashFile(path: string): Promise<{digest: string; size: number} | undefined> {
  try {
    const st = await stat(path)
    if (!st.isFile()) return undefined
  } catch {
    return undefined
  }
  const hash = createHash('sha256')
  let size = 0
  for await (const chunk of createReadStream(path, {highWaterMark: SEQUENTIAL_READ_BYTES})) {
    hash.update(chunk as Buffer)
    size += (chunk as Buffer).length
  }
  return {digest: `sha256:${hash.digest('hex')}`, size}
}

/**
 * A pass-through stream that hashes what flows and refuses to pass more than
 * `maxSize` bytes (a server that sends more than announced is cut off at
 * once, not after filling the disk), telling `onChunk` each chunk's length
 * (progress, the low-speed clock). The hot path of every download: one stage
 * for all of it, as each stage of a pipeline costs its own hop per chunk.
 */
export class HashingStream extends Transform {
  readonly hash: Hash
  bytes = 0

  constructor(
    private readonly maxSize?: number,
    private readonly label = 'stream',
    hash?: Hash,
    private readonly onChunk?: (bytes: number) => void,
  ) {
    super()
    this.hash = hash ?? createHash('sha256')
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length
    if (this.maxSize !== undefined && this.bytes > this.maxSize) {
      cb(new IntegrityError(this.label, `${this.maxSize} bytes`, `more than ${this.maxSize} bytes`))
      return
    }
    this.hash.update(chunk)
    this.onChunk?.(chunk.length)
    cb(null, chunk)
  }

  /** `sha256:<hex>`; call once, after the end. */
  digest(): string {
    return `sha256:${this.hash.digest('hex')}`
  }
}
