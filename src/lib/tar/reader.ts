import {BundleError} from '../errors.js'
import {BLOCK, padded, type TarHeader, TarHeaderDecoder} from './headers.js'

/**
 * A pull-based reader of a plain tar stream: the entries already read in
 * one batch, a small body whole, a big one handed out as chunks the caller
 * must drain before asking for the next batch. Pulling (rather than
 * node-tar's push parser) gives the importers natural backpressure and lets
 * them await a file write or an upload between entries; batches let them
 * take thousands of small files without one. It understands ustar, GNU long
 * names and pax per-file records, and nothing clever: no decompression
 * sniffing, so a gzip inside the tar stays an opaque file. Headers are
 * decoded by `TarHeaderDecoder`.
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

  /** The source's next chunk, or null at its end. */
  private async next(): Promise<Buffer | null> {
    if (this.ended) return null
    const r = await this.it.next()
    if (r.done) {
      this.ended = true
      return null
    }
    return typeof r.value === 'string' ? Buffer.from(r.value) : r.value
  }

  /** Exactly `n` bytes, or null at a clean end (no byte of them there); a partial read throws. */
  async exact(n: number, what: string): Promise<Buffer | null> {
    const here = this.take(n)
    if (here) return here
    // Bytes that straddle chunks: only they are copied together, not the chunks around them.
    const parts = [this.buf]
    let have = this.buf.length
    while (have < n) {
      const chunk = await this.next()
      if (!chunk) {
        if (have === 0) return null
        throw new BundleError(`truncated archive: ${what} needs ${n} bytes, only ${have} left`)
      }
      const use = Math.min(chunk.length, n - have)
      parts.push(chunk.subarray(0, use))
      this.buf = chunk.subarray(use)
      have += use
    }
    this.consumed += n
    return Buffer.concat(parts, n)
  }

  /** Exactly `n` bytes if they are in the buffer already, else null (nothing taken). */
  take(n: number): Buffer | null {
    if (this.buf.length < n) return null
    const out = this.buf.subarray(0, n)
    this.buf = this.buf.subarray(n)
    this.consumed += n
    return out
  }

  /** Up to `n` bytes in the chunks they arrive in; throws when the stream ends first. */
  async *chunks(n: number, what: string): AsyncGenerator<Buffer> {
    let left = n
    while (left > 0) {
      if (this.buf.length === 0) {
        const chunk = await this.next()
        if (!chunk) throw new BundleError(`truncated archive: ${what} ends ${left} bytes early`)
        this.buf = chunk
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
    for (let chunk = await this.next(); chunk; chunk = await this.next()) this.consumed += chunk.length
  }
}

export interface TarEntry {
  header: TarHeader
  /** The body's bytes; drained by the reader if the caller leaves it. */
  body: AsyncGenerator<Buffer>
}

/** Bodies up to this size are gathered whole and handed out in batches. */
export const WHOLE_BODY_BYTES = 256 * 1024

/** One entry of a batch: its whole body, or (for a bigger one) its body as it comes. */
export type TarBatchItem =
  | {header: TarHeader; data: Buffer; body?: undefined}
  | {header: TarHeader; data?: undefined; body: AsyncGenerator<Buffer>}

/**
 * The entries of a plain tar stream, in order, in batches: every entry
 * whose header and body are already read comes in the batch, so that a
 * caller handles thousands of small files without an await between them.
 * A body of up to WHOLE_BODY_BYTES comes whole (`data`), read on when it
 * ends in the next chunk. A bigger one comes as `body`, the last item of its
 * batch: its bytes as they come, drained by the reader if the caller leaves
 * them. Metadata records (pax `x`/`g`, GNU `L`/`K`) are folded into the
 * entry they describe. Stops at the end marker and then drains the rest of
 * the source, so a broken stream after the last entry (a truncated gzip)
 * still fails.
 */
export async function* readTarBatches(
  source: AsyncIterable<Buffer | string>,
  what = 'archive',
): AsyncGenerator<TarBatchItem[]> {
  const r = new ByteReader(source)
  const decoder = new TarHeaderDecoder(what)
  const batch: TarBatchItem[] = []
  for (;;) {
    let block = r.take(BLOCK)
    if (!block) {
      // Before waiting for more bytes, the caller gets what is ready.
      if (batch.length > 0) yield batch.splice(0)
      block = await r.exact(BLOCK, `${what}: header`)
      if (block === null) throw new BundleError(`truncated archive: ${what} has no end marker`)
    }
    const step = decoder.block(block, r.consumed - BLOCK)
    if (step.kind === 'end') {
      if (batch.length > 0) yield batch.splice(0)
      // Whatever follows (the second zero block, record padding) is read and dropped.
      await r.drain()
      return
    }
    if (step.kind === 'meta') {
      let body = r.take(padded(step.size))
      if (!body) {
        if (batch.length > 0) yield batch.splice(0)
        body = await r.exact(padded(step.size), `${what}: metadata record`)
        if (body === null) throw new BundleError(`truncated archive: ${what}`)
      }
      decoder.meta(body.subarray(0, step.size))
      continue
    }
    const {header} = step
    const {path, size: dataSize} = header
    const dataPadded = padded(dataSize)
    const label = `${what}: ${JSON.stringify(path.slice(0, 200))}`
    if (dataSize <= WHOLE_BODY_BYTES) {
      let data = r.take(dataPadded)
      if (!data) {
        if (batch.length > 0) yield batch.splice(0)
        data = await r.exact(dataPadded, label)
        if (data === null) throw new BundleError(`truncated archive: ${label} ends ${dataSize} bytes early`)
      }
      batch.push({header, data: data.subarray(0, dataSize)})
      continue
    }
    let left = dataSize
    const body = (async function* () {
      for await (const c of r.chunks(dataSize, label)) {
        left -= c.length
        yield c
      }
    })()
    batch.push({header, body})
    yield batch.splice(0)
    // Whatever the caller left of the body (it may have stopped early), then the padding to the next block.
    await body.return(undefined)
    for await (const c of r.chunks(left, label)) void c
    if (dataPadded > dataSize) {
      const pad = await r.exact(dataPadded - dataSize, `${what}: padding`)
      if (pad === null) throw new BundleError(`truncated archive: ${what} ends inside padding`)
    }
  }
}

/**
 * The entries of a plain tar stream, one at a time: readTarBatches, with
 * each whole body handed out as one chunk.
 */
export async function* readTar(source: AsyncIterable<Buffer | string>, what = 'archive'): AsyncGenerator<TarEntry> {
  for await (const batch of readTarBatches(source, what)) {
    for (const item of batch) yield {header: item.header, body: item.body ?? wholeBody(item.data)}
  }
}

/** A whole body as the chunks of a streaming one: itself, unless empty. */
export async function* wholeBody(data: Buffer): AsyncGenerator<Buffer> {
  if (data.length > 0) yield data
}
