import {Transform, type TransformCallback} from 'node:stream'
import {constants, gzip, type ZlibOptions} from 'node:zlib'

/** Byte 9 of a gzip header names the OS that wrote it; pinned so the same store gives the same bytes everywhere. */
const OS_BYTE = 9
const OS_UNIX = 3

/**
 * Uncompressed bytes per gzip member. Fixed, so the same input gives the
 * same members whatever the size of the chunks it came in: the archive is
 * reproducible. A member starts with an empty dictionary, which costs about
 * 0.1% of the output at this size.
 */
export const GZIP_MEMBER_BYTES = 1024 * 1024

/** Members compressed at once, per stream (on libuv's threads, beside the main thread). */
const MEMBERS_IN_FLIGHT = 3

/**
 * A gzip stream compressed on several cores: the input is cut into members
 * of GZIP_MEMBER_BYTES, each compressed on libuv's thread pool while the
 * main thread goes on, and the members are passed on in order. Concatenated
 * gzip members are one valid gzip stream (RFC 1952; gunzip, `tar -xzf` and
 * Node's gunzip read them all). Each header has no name, time 0 and a fixed
 * OS byte, so the same input gives the same bytes. At most
 * MEMBERS_IN_FLIGHT members are held at once.
 */
export function reproducibleGzip(level = constants.Z_DEFAULT_COMPRESSION): Transform {
  return new ParallelGzip({level})
}

class ParallelGzip extends Transform {
  /** Input not yet cut into a member. */
  private held: Buffer[] = []
  private heldBytes = 0
  /** Members being compressed, in order. */
  private readonly inFlight: Promise<Buffer>[] = []
  private members = 0

  constructor(private readonly zlibOptions: ZlibOptions) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    let at = 0
    while (this.heldBytes + (chunk.length - at) >= GZIP_MEMBER_BYTES) {
      const take = GZIP_MEMBER_BYTES - this.heldBytes
      this.held.push(chunk.subarray(at, at + take))
      this.heldBytes += take
      at += take
      this.startMember()
    }
    if (at < chunk.length) {
      // A copy only when the rest is kept: the caller may reuse its chunk.
      this.held.push(Buffer.from(chunk.subarray(at)))
      this.heldBytes += chunk.length - at
    }
    this.passOn(MEMBERS_IN_FLIGHT - 1).then(() => cb(), cb)
  }

  override _flush(cb: TransformCallback): void {
    // An empty input is one empty member: still a valid gzip stream.
    if (this.heldBytes > 0 || this.members === 0) this.startMember()
    this.passOn(0).then(() => cb(), cb)
  }

  private startMember(): void {
    // A copy always: a piece of the chunk in hand may be reused by its writer once handed back.
    const input = Buffer.concat(this.held, this.heldBytes)
    this.held = []
    this.heldBytes = 0
    this.members++
    const member = new Promise<Buffer>((resolve, reject) => {
      gzip(input, this.zlibOptions, (err, out) => (err ? reject(err) : resolve(out)))
    })
    // Awaited in order by passOn; a failure is reported there, not as an unhandled rejection.
    member.catch(() => {})
    this.inFlight.push(member)
  }

  /** Push finished members, oldest first, until at most `keep` are in flight. */
  private async passOn(keep: number): Promise<void> {
    while (this.inFlight.length > keep) {
      const out = await this.inFlight[0]
      this.inFlight.shift()
      out[OS_BYTE] = OS_UNIX
      this.push(out)
    }
  }
}
