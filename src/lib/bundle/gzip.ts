import {Transform, type TransformCallback} from 'node:stream'
import {constants, createGzip, type Gzip} from 'node:zlib'

/**
 * What a gzip stream is fed in: zlib takes every write to the thread pool
 * on its own, so a tar of thousands of small files written entry by entry
 * (a header, a body, its padding) spends more time handing pieces over than
 * compressing them. Under glibc's first mmap threshold (see
 * SEQUENTIAL_READ_BYTES): a buffer freed is reused for the next one.
 */
export const GZIP_BLOCK = 120 * 1024

/** The bytes of `chunks`, as they come, in blocks of `size` (the last one shorter); a chunk of a block or more passes as it is. */
export async function* inBlocks(chunks: AsyncIterable<Buffer>, size = GZIP_BLOCK): AsyncGenerator<Buffer> {
  let block: Buffer | undefined
  let used = 0
  for await (const chunk of chunks) {
    if (used > 0 && used + chunk.length > size) {
      yield block!.subarray(0, used)
      block = undefined
      used = 0
    }
    if (chunk.length >= size) {
      yield chunk
      continue
    }
    block ??= Buffer.allocUnsafe(size)
    used += chunk.copy(block, used)
  }
  if (used > 0) yield block!.subarray(0, used)
}

/** Byte 9 of a gzip header names the OS that wrote it; pinned so the same store gives the same bytes everywhere. */
const OS_BYTE = 9
const OS_UNIX = 3

/**
 * A gzip stream whose header has no name and no time (zlib writes neither
 * and mtime 0) and a fixed OS byte. Compression runs on libuv's thread pool,
 * so two archives compress on two cores at once.
 */
export function reproducibleGzip(level = constants.Z_DEFAULT_COMPRESSION): [Gzip, Transform] {
  return [createGzip({level, chunkSize: 256 * 1024}), new PinOsByte()]
}

class PinOsByte extends Transform {
  private seen = 0

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.seen <= OS_BYTE && this.seen + chunk.length > OS_BYTE) {
      chunk[OS_BYTE - this.seen] = OS_UNIX
    }
    this.seen += chunk.length
    cb(null, chunk)
  }
}
