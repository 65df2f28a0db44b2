import {BundleError} from '../errors.js'
import {BLOCK, padded, TarHeaderDecoder, type TarHeader} from './headers.js'

/**
 * A pull-based reader of a plain tar stream: one header at a time, its body
 * handed out as chunks the caller must drain before asking for the next
 * header. Pulling (rather than node-tar's push parser) gives the importers
 * natural backpressure and lets them await a file write or an upload between
 * entries. It understands ustar, GNU long names and pax per-file records,
 * and nothing clever: no decompression sniffing, so a gzip inside the tar
 * stays an opaque file. Headers are decoded by `TarHeaderDecoder`.
 */

/** Reads exact byte counts out of an async iterable of buffers without copying where it can. */
export class ByteReader {
  private readonly it: AsyncIterator<Buffer>
  private buf: Buffer = Buffer.alloc(0)
  private ended = false
  /** Bytes handed out so far. */
  consumed = 0

  constructor(source: AsyncIterable<Buffer | string>) {
    this.it = (source as AsyncIterable<Buffer>)[Symbol.asyncIterator]()
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false
    const r = await this.it.next()
    if (r.done) {
      this.ended = true
      return false
    }
    const chunk = typeof r.value === 'string' ? Buffer.from(r.value) : r.value
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk])
    return true
  }

  /** Exactly `n` bytes, or null at a clean end (no byte of them there); a partial read throws. */
  async exact(n: number, what: string): Promise<Buffer | null> {
    while (this.buf.length < n) {
      if (!(await this.fill())) {
        if (this.buf.length === 0) return null
        throw new BundleError(`truncated archive: ${what} needs ${n} bytes, only ${this.buf.length} left`)
      }
    }
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    this.consumed += n
    return out
  }

  /** Up to `n` bytes in the chunks they arrive in; throws when the stream ends first. */
  async *chunks(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.fill())) {
        throw new BundleError(`truncated archive: ${what} ends ${left} bytes early`)
      }
      const take = Math.min(left, this.buf.length)
      const out = this.buf.subarray(0, take)
      this.buf = this.buf.subarray(take)
      this.consumed += take
      left -= take
      yield out
    }
  }

  /** Read and drop whatever is left (padding after the end marker), so stream errors still surface. */
  async drain(): Promise<void> {
    this.consumed += this.buf.length
    this.buf = Buffer.alloc(0)
    while (await this.fill()) {
      this.consumed += this.buf.length
      this.buf = Buffer.alloc(0)
    }
  }
}

export interface TarEntry {
  header: TarHeader
  /** The body's bytes; drained by the reader if the caller leaves it. */
  body: AsyncGenerator<Buffer>
}

/**
 * The entries of a plain tar stream, in order. Metadata records (pax `x`/`g`,
 * GNU `L`/`K`) are folded into the entry they describe. Stops at the end
 * marker and then drains the rest of the source, so a broken stream after
 * the last entry (a truncated gzip) still fails.
 */
export async function* readTar(source: AsyncIterable<Buffer | string>, what = 'archive'): AsyncGenerator<TarEntry> {
  const r = new ByteReader(source)
  const decoder = new TarHeaderDecoder(what)
  for (;;) {
    const block = await r.exact(BLOCK, `${what}: header`)
    if (block === null) throw new BundleError(`truncated archive: ${what} has no end marker`)
    const step = decoder.block(block, r.consumed - BLOCK)
    if (step.kind === 'end') {
      // Whatever follows (the second zero block, record padding) is read and dropped.
      await r.drain()
      return
    }
    if (step.kind === 'meta') {
      const body = await r.exact(padded(step.size), `${what}: metadata record`)
      if (body === null) throw new BundleError(`truncated archive: ${what}`)
      decoder.meta(body.subarray(0, step.size))
      continue
    }
    const {header} = step
    const {path, size: dataSize} = header
    const dataPadded = padded(dataSize)
    const label = `${what}: ${JSON.stringify(path.slice(0, 200))}`
    let left = dataSize
    const body = (async function* () {
      for await (const c of r.chunks(dataSize, label)) {
        left -= c.length
        yield c
      }
    })()
    yield {header, body}
    // Whatever the caller left of the body (it may have stopped early), then the padding to the next block.
    await body.return(undefined)
    for await (const c of r.chunks(left, label)) void c
    if (dataPadded > dataSize) {
      const pad = await r.exact(dataPadded - dataSize, `${what}: padding`)
      if (pad === null) throw new BundleError(`truncated archive: ${what} ends inside padding`)
    }
  }
}
