import {createReadStream} from 'node:fs'
import {open, stat, type FileHandle} from 'node:fs/promises'
import {PassThrough, Readable} from 'node:stream'

import type {ImageSource} from '../copy.js'
import {BundleError} from '../errors.js'
import type {Opener} from '../fetch/download.js'
import type {OpenedStream} from '../fetch/http.js'
import {digestHex, isDigest} from './digest.js'
import type {Descriptor} from './media-types.js'

/**
 * An oci-archive (a plain tar of an OCI image layout) read in place: the tar
 * is indexed once (entry name -> offset and size of its data), then each
 * entry streams from its offset. Nothing is extracted. The tar may be one
 * file or several parts (NAME.000, NAME.001, ...) that together form it; a
 * read simply crosses from one part into the next.
 */

export interface ArchiveEntry {
  /** Path inside the tar, without a leading `./`. */
  name: string
  /** Offset of the entry's data from the start of the (joined) tar. */
  offset: number
  size: number
}

export interface OciDescriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
  platform?: {os: string; architecture: string; variant?: string}
  [key: string]: unknown
}

export interface OciIndexJson {
  schemaVersion: number
  mediaType?: string
  manifests: OciDescriptor[]
  annotations?: Record<string, string>
}

interface Part {
  path: string
  /** Offset of this part's first byte in the joined tar. */
  start: number
  size: number
}

const BLOCK = 512
/** Reads of blobs go in large chunks: the hot path of an import. */
const STREAM_CHUNK = 256 << 10

export class OciArchive {
  private readonly index = new Map<string, ArchiveEntry>()

  private constructor(
    private readonly parts: Part[],
    private readonly handles: FileHandle[],
    /** Total bytes of the joined tar. */
    readonly size: number,
  ) {}

  /** Every regular file of the tar by name. */
  get entries(): ReadonlyMap<string, ArchiveEntry> {
    return this.index
  }

  /**
   * Index the tar made of `paths` (one file, or its numbered parts in order).
   * Throws BundleError when it is not a readable tar.
   */
  static async open(paths: string[]): Promise<OciArchive> {
    if (paths.length === 0) throw new BundleError('no archive to read')
    const parts: Part[] = []
    let start = 0
    for (const path of paths) {
      const st = await stat(path).catch((err: NodeJS.ErrnoException) => {
        throw new BundleError(`cannot read ${path}: ${err.code ?? err.message}`)
      })
      parts.push({path, start, size: st.size})
      start += st.size
    }
    const handles = await Promise.all(parts.map((p) => open(p.path, 'r')))
    const archive = new OciArchive(parts, handles, start)
    try {
      await archive.scan()
    } catch (err) {
      await archive.close()
      throw err
    }
    return archive
  }

  async close(): Promise<void> {
    await Promise.all(this.handles.map((h) => h.close().catch(() => {})))
  }

  /** The name of the archive for messages: its first part. */
  get path(): string {
    return this.parts[0].path
  }

  /** Read `length` bytes at `position` of the joined tar, crossing parts. */
  private async readAt(position: number, length: number): Promise<Buffer> {
    const out = Buffer.alloc(length)
    let done = 0
    for (let i = 0; i < this.parts.length && done < length; i++) {
      const p = this.parts[i]
      const pos = position + done
      if (pos >= p.start + p.size) continue
      const within = pos - p.start
      const want = Math.min(length - done, p.size - within)
      let got = 0
      while (got < want) {
        const {bytesRead} = await this.handles[i].read(out, done + got, want - got, within + got)
        if (bytesRead === 0) break
        got += bytesRead
      }
      done += got
      if (got < want) break
    }
    return done === length ? out : out.subarray(0, done)
  }

  /**
   * Walk the tar headers once, skipping over data. Understands ustar (with
   * its name prefix), GNU long names and pax `path`/`size` records, which
   * every tar writer in use produces for long blob paths or huge blobs.
   */
  private async scan(): Promise<void> {
    const entries = this.index
    const links: [string, string][] = []
    let pos = 0
    let longName: string | undefined
    let longLink: string | undefined
    let pax: Record<string, string> = {}
    let globalPax: Record<string, string> = {}
    while (pos + BLOCK <= this.size) {
      const h = await this.readAt(pos, BLOCK)
      if (h.length < BLOCK) break
      if (h.every((b) => b === 0)) break // end-of-archive marker
      if (!checksumOk(h)) throw new BundleError(`${this.path}: not a tar archive (bad header checksum at byte ${pos})`)
      const type = String.fromCharCode(h[156] || 48)
      let size = parseNumber(h.subarray(124, 136))
      const magic = h.toString('latin1', 257, 263)
      let name = cString(h, 0, 100)
      if (magic === 'ustar\0') {
        const prefix = cString(h, 345, 500)
        if (prefix) name = `${prefix}/${name}`
      }
      const linkName = cString(h, 157, 257)
      const dataAt = pos + BLOCK
      const merged = {...globalPax, ...pax}
      if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
        const data = await this.readAt(dataAt, size)
        if (type === 'L') longName = cString(data, 0, data.length)
        else if (type === 'K') longLink = cString(data, 0, data.length)
        else if (type === 'x') pax = parsePax(data)
        else globalPax = {...globalPax, ...parsePax(data)}
        pos = dataAt + padded(size)
        continue
      }
      if (merged.size !== undefined) size = Number(merged.size)
      if (merged.path !== undefined) name = merged.path
      else if (longName !== undefined) name = longName
      name = cleanName(name)
      if (type === '0' || type === '7') {
        if (dataAt + size > this.size) throw new BundleError(`${this.path}: truncated: ${name} ends past the end of the archive`)
        entries.set(name, {name, offset: dataAt, size})
      } else if (type === '1') {
        links.push([name, cleanName(merged.linkpath ?? longLink ?? linkName)])
      }
      pax = {}
      longName = undefined
      longLink = undefined
      // Links, devices, directories and fifos have no data whatever their size field says.
      pos = dataAt + padded('123456'.includes(type) ? 0 : size)
    }
    for (const [name, target] of links) {
      const t = entries.get(target)
      if (t) entries.set(name, {...t, name})
    }
  }

  has(name: string): boolean {
    return this.entries.has(cleanName(name))
  }

  entry(name: string): ArchiveEntry {
    const e = this.entries.get(cleanName(name))
    if (!e) throw new BundleError(`${this.path}: no ${name} inside`)
    return e
  }

  /** A whole (small) entry in memory: index.json, manifests, configs. */
  async readEntry(name: string, maxSize = 64 << 20): Promise<Buffer> {
    const e = this.entry(name)
    if (e.size > maxSize) throw new BundleError(`${this.path}: ${name} is larger than ${maxSize} bytes`)
    return this.readAt(e.offset, e.size)
  }

  /**
   * Stream `length` bytes of the joined tar from `offset` (within one entry,
   * usually), part after part. Memory stays at one read buffer per stream.
   */
  streamRange(offset: number, length: number): Readable {
    const parts = this.parts
    const out = new PassThrough({highWaterMark: STREAM_CHUNK})
    const pump = async (): Promise<void> => {
      let pos = offset
      const end = offset + length
      for (const p of parts) {
        if (pos >= end) break
        if (pos >= p.start + p.size) continue
        const from = pos - p.start
        const to = Math.min(end, p.start + p.size) - p.start // exclusive
        if (to <= from) continue
        const rs = createReadStream(p.path, {start: from, end: to - 1, highWaterMark: STREAM_CHUNK})
        for await (const chunk of rs) {
          if (!out.write(chunk)) await new Promise<void>((resolve, reject) => {
            const onDrain = (): void => { out.off('close', onClose); resolve() }
            const onClose = (): void => { out.off('drain', onDrain); reject(new Error('stream closed')) }
            out.once('drain', onDrain)
            out.once('close', onClose)
          })
        }
        pos += to - from
      }
      if (pos < end) throw new BundleError(`${this.path}: archive ends before byte ${end}`)
    }
    pump().then(
      () => out.end(),
      (err: Error) => out.destroy(err),
    )
    return out
  }

  /** Stream a whole entry. */
  openEntry(name: string): Readable {
    const e = this.entry(name)
    return this.streamRange(e.offset, e.size)
  }

  // The OCI image layout on top of the tar.

  static blobName(digest: string): string {
    if (!isDigest(digest)) throw new BundleError(`not a sha256 digest: ${digest}`)
    return `blobs/sha256/${digestHex(digest)}`
  }

  hasBlob(digest: string): boolean {
    return isDigest(digest) && this.entries.has(OciArchive.blobName(digest))
  }

  blobSize(digest: string): number {
    return this.entry(OciArchive.blobName(digest)).size
  }

  openBlob(digest: string): Readable {
    return this.openEntry(OciArchive.blobName(digest))
  }

  /** A small blob (manifest, index, config) in memory. */
  readBlob(digest: string): Promise<Buffer> {
    return this.readEntry(OciArchive.blobName(digest))
  }

  /** The layout's `index.json`, checked for the `oci-layout` marker. */
  async readIndex(): Promise<OciIndexJson> {
    if (!this.has('oci-layout')) throw new BundleError(`${this.path}: not an OCI image layout (no oci-layout inside)`)
    let index: OciIndexJson
    try {
      index = JSON.parse((await this.readEntry('index.json')).toString('utf8')) as OciIndexJson
    } catch (err) {
      if (err instanceof BundleError) throw err
      throw new BundleError(`${this.path}: index.json is not valid JSON`)
    }
    if (!index || !Array.isArray(index.manifests)) throw new BundleError(`${this.path}: index.json has no manifests list`)
    return index
  }
}

/** A tar member name as stored in maps: no `./` prefix, no trailing slash. */
function cleanName(name: string): string {
  let n = name
  while (n.startsWith('./')) n = n.slice(2)
  while (n.startsWith('/')) n = n.slice(1)
  if (n.endsWith('/')) n = n.slice(0, -1)
  return n
}

function cString(buf: Buffer, start: number, end: number): string {
  const nul = buf.indexOf(0, start)
  return buf.toString('utf8', start, nul >= 0 && nul < end ? nul : end)
}

/** Octal, or GNU base-256 (high bit set) for sizes beyond 8 GiB. */
function parseNumber(field: Buffer): number {
  if (field[0] & 0x80) {
    let n = field[0] & 0x7f
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]
    return n
  }
  const s = field.toString('latin1').replace(/\0.*$/s, '').trim()
  return s === '' ? 0 : parseInt(s, 8)
}

function checksumOk(h: Buffer): boolean {
  const stored = parseNumber(h.subarray(148, 156))
  let sum = 0
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 32 : h[i]
  return sum === stored
}

function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK
}

/** Pax records: `LEN key=value\n`, LEN counting the whole record. */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {}
  let i = 0
  while (i < data.length) {
    const sp = data.indexOf(0x20, i)
    if (sp < 0) break
    const len = parseInt(data.toString('latin1', i, sp), 10)
    if (!Number.isFinite(len) || len <= 0) break
    const rec = data.toString('utf8', sp + 1, i + len - 1)
    const eq = rec.indexOf('=')
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1)
    i += len
  }
  return out
}

/**
 * An oci-archive as a copy source: manifests read from the tar, blobs
 * streamed from their offsets. Copy's Opener contract is met with a stream
 * that starts at the asked offset, so any byte range can be sent again.
 */
export class ArchiveImageSource implements ImageSource {
  readonly name: string

  constructor(readonly archive: OciArchive) {
    this.name = archive.path
  }

  async fetchManifest(desc: Descriptor): Promise<Buffer> {
    if (!this.archive.hasBlob(desc.digest)) throw new BundleError(`${this.archive.path}: manifest ${desc.digest} is missing`)
    return this.archive.readBlob(desc.digest)
  }

  blobOpener(desc: Descriptor): Opener {
    return async (offset: number): Promise<OpenedStream> => {
      if (!this.archive.hasBlob(desc.digest)) throw new BundleError(`${this.archive.path}: blob ${desc.digest} is missing`)
      const e = this.archive.entry(OciArchive.blobName(desc.digest))
      const from = Math.min(Math.max(0, offset), e.size)
      return {stream: this.archive.streamRange(e.offset + from, e.size - from), start: from, total: e.size, url: `${this.archive.path}#${e.name}`}
    }
  }
}
