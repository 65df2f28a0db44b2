import {Transform, type TransformCallback} from 'node:stream'
import {constants, createGzip, type Gzip} from 'node:zlib'

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
