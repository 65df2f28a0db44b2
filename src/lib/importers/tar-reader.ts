import {BundleError} from '../errors.js'

/**
 * A pull-based reader of a plain tar stream: one header at a time, its body
 * handed out as chunks the caller must drain before asking for the next
 * header. Pulling (rather than node-tar's push parser) gives the importers
 * natural backpressure and lets them await a file write or an upload between
 * entries. It understands ustar, GNU long names and pax per-file records,
 * and nothing clever: no decompression sniffing, so a gzip inside the tar
 * stays an opaque file.
 */

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo' | 'other'

export interface TarHeader {
  path: string
  type: TarEntryType
  /** The raw typeflag, for messages about `other`. */
  typeflag: string
  size: number
  mode: number
  linkpath?: string
}

const BLOCK = 512
/** Pax and GNU long-name records are metadata; anything bigger is hostile. */
const MAX_META = 1024 * 1024

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

function cstring(block: Buffer, start: number, len: number): string {
  const field = block.subarray(start, start + len)
  const nul = field.indexOf(0)
  return (nul === -1 ? field : field.subarray(0, nul)).toString('utf8')
}

function octal(block: Buffer, start: number, len: number, what: string): number {
  const field = block.subarray(start, start + len)
  if (field[0] & 0x80) {
    // GNU base-256: big-endian, high bit set. Negative values are never valid here.
    if (field[0] & 0x40) throw new BundleError(`bad tar header: negative ${what}`)
    let v = field[0] & 0x3f
    for (let i = 1; i < field.length; i++) v = v * 256 + field[i]
    if (!Number.isSafeInteger(v)) throw new BundleError(`bad tar header: ${what} too large`)
    return v
  }
  const s = cstring(block, start, len).trim()
  if (s === '') return 0
  if (!/^[0-7]+$/.test(s)) throw new BundleError(`bad tar header: ${what} is not octal`)
  return Number.parseInt(s, 8)
}

function checksumOk(block: Buffer): boolean {
  const want = octal(block, 148, 8, 'checksum')
  let unsigned = 0
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]
    unsigned += b
    signed += b > 127 ? b - 256 : b
  }
  return want === unsigned || want === signed
}

const TYPES: Record<string, TarEntryType> = {
  '0': 'file',
  '\0': 'file',
  '7': 'file',
  '5': 'directory',
  '2': 'symlink',
  '1': 'hardlink',
  '3': 'char-device',
  '4': 'block-device',
  '6': 'fifo',
}

/** `"%d key=value\n"` records. Lengths are in bytes, values may hold any byte but a newline ends them. */
export function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>()
  let pos = 0
  while (pos < body.length) {
    if (body[pos] === 0) break
    const space = body.indexOf(0x20, pos)
    if (space === -1) throw new BundleError('bad pax header: record without length')
    const len = Number(body.subarray(pos, space).toString('ascii'))
    if (!Number.isInteger(len) || len <= space - pos + 1 || pos + len > body.length) throw new BundleError('bad pax header: bad record length')
    const record = body.subarray(space + 1, pos + len)
    if (record[record.length - 1] !== 0x0a) throw new BundleError('bad pax header: record not ended by a newline')
    const eq = record.indexOf(0x3d)
    if (eq === -1) throw new BundleError('bad pax header: record without =')
    out.set(record.subarray(0, eq).toString('utf8'), record.subarray(eq + 1, record.length - 1).toString('utf8'))
    pos += len
  }
  return out
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
  let pax: Map<string, string> | undefined
  let longName: string | undefined
  let longLink: string | undefined
  for (;;) {
    const block = await r.exact(BLOCK, `${what}: header`)
    if (block === null) throw new BundleError(`truncated archive: ${what} has no end marker`)
    if (block.every((b) => b === 0)) {
      // End of archive; whatever follows (the second zero block, record padding) is read and dropped.
      if (pax || longName || longLink) throw new BundleError(`bad archive: ${what} ends after a metadata record`)
      await r.drain()
      return
    }
    if (!checksumOk(block)) throw new BundleError(`bad archive: ${what}: header checksum mismatch at byte ${r.consumed - BLOCK}`)
    const typeflag = String.fromCharCode(block[156])
    let size = octal(block, 124, 12, 'size')
    const padded = Math.ceil(size / BLOCK) * BLOCK
    if (typeflag === 'x' || typeflag === 'g' || typeflag === 'L' || typeflag === 'K') {
      if (size > MAX_META) throw new BundleError(`bad archive: ${what}: metadata record of ${size} bytes`)
      const body = (await r.exact(padded, `${what}: metadata record`)) ?? Buffer.alloc(0)
      if (body.length < padded) throw new BundleError(`truncated archive: ${what}`)
      const data = body.subarray(0, size)
      if (typeflag === 'x') pax = parsePax(data)
      else if (typeflag === 'L') longName = cstring(data, 0, data.length)
      else if (typeflag === 'K') longLink = cstring(data, 0, data.length)
      // Global pax records (`g`) describe defaults such as mtime; none of them matters for what is imported.
      continue
    }
    const magic = block.subarray(257, 263).toString('latin1')
    let path = cstring(block, 0, 100)
    // ustar splits long names into prefix + name; GNU tar uses those bytes for times instead.
    if (magic === 'ustar\0') {
      const prefix = cstring(block, 345, 155)
      if (prefix) path = `${prefix}/${path}`
    }
    let linkpath: string | undefined = cstring(block, 157, 100) || undefined
    if (longName !== undefined) path = longName
    if (longLink !== undefined) linkpath = longLink
    if (pax?.has('path')) path = pax.get('path')!
    if (pax?.has('linkpath')) linkpath = pax.get('linkpath')!
    if (pax?.has('size')) {
      const s = pax.get('size')!
      if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new BundleError(`bad pax header: size ${s}`)
      size = Number(s)
    }
    pax = longName = longLink = undefined
    const type = TYPES[typeflag] ?? 'other'
    // Only regular files carry data; any other type with a size would desynchronise a reader that trusted it.
    const dataSize = type === 'file' ? size : typeflag === '1' || typeflag === '2' || typeflag === '5' ? 0 : size
    const header: TarHeader = {path, type, typeflag, size: dataSize, mode: octal(block, 100, 8, 'mode'), linkpath}
    const dataPadded = Math.ceil(dataSize / BLOCK) * BLOCK
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
