import {createReadStream} from 'node:fs'
import {type FileHandle, open, stat} from 'node:fs/promises'
import {PassThrough, Readable} from 'node:stream'

import type {Descriptor, ImageIndex} from '../content/descriptor.js'
import {digestHex, isDigest} from '../content/digest.js'
import type {OpenedStream, Opener} from '../content/opener.js'
import type {ImageSource} from '../content/roles.js'
import {BundleError} from '../errors.js'
import {ManifestParseError, parseLayoutIndex} from '../graph/parse.js'
import {BLOCK, padded, TarHeaderDecoder} from '../tar/headers.js'

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

interface Part {
  path: string
  /** Offset of this part's first byte in the joined tar. */
  start: number
  size: number
}

/** Reads of blobs go in large chunks: the hot path of an import. */
const STREAM_CHUNK = 256 << 10
/** A blob up to this size is read whole when opened (configs, tiny layers): one read, no stream of its own. */
const WHOLE_BLOB = 256 << 10

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

  /** `length` bytes from `position` of the joined tar, in memory; throws when the archive ends first. */
  async readRange(position: number, length: number): Promise<Buffer> {
    const bytes = await this.readAt(position, length)
    if (bytes.length < length) throw new BundleError(`${this.path}: archive ends before byte ${position + length}`)
    return bytes
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
   * Walk the tar headers once, skipping over data; the shared decoder folds
   * long names and pax records into the entries they describe. A tar that
   * simply stops after its last entry (no end marker) is accepted.
   */
  private async scan(): Promise<void> {
    const entries = this.index
    const links: [string, string][] = []
    const decoder = new TarHeaderDecoder(this.path)
    let pos = 0
    while (pos + BLOCK <= this.size) {
      const step = decoder.block(await this.readAt(pos, BLOCK), pos)
      if (step.kind === 'end') break
      const dataAt = pos + BLOCK
      if (step.kind === 'meta') {
        const data = await this.readAt(dataAt, step.size)
        if (data.length < step.size)
          throw new BundleError(`${this.path}: truncated: a metadata record ends past the end of the archive`)
        decoder.meta(data)
        pos = dataAt + padded(step.size)
        continue
      }
      const {header} = step
      const name = cleanName(header.path)
      if (header.type === 'file') {
        if (dataAt + header.size > this.size)
          throw new BundleError(`${this.path}: truncated: ${name} ends past the end of the archive`)
        entries.set(name, {name, offset: dataAt, size: header.size})
      } else if (header.type === 'hardlink') {
        links.push([name, cleanName(header.linkpath ?? '')])
      }
      pos = dataAt + padded(header.size)
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
          // The reader went away (a failed upload destroys its source): stop, which closes `rs` too.
          if (out.destroyed) return
          if (!out.write(chunk))
            await new Promise<void>((resolve, reject) => {
              if (out.destroyed) return reject(new Error('stream closed'))
              const onDrain = (): void => {
                out.off('close', onClose)
                resolve()
              }
              const onClose = (): void => {
                out.off('drain', onDrain)
                reject(new Error('stream closed'))
              }
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
  async readIndex(): Promise<ImageIndex> {
    if (!this.has('oci-layout')) throw new BundleError(`${this.path}: not an OCI image layout (no oci-layout inside)`)
    const bytes = await this.readEntry('index.json')
    try {
      return parseLayoutIndex(bytes)
    } catch (err) {
      if (err instanceof ManifestParseError && err.reason === 'json')
        throw new BundleError(`${this.path}: index.json is not valid JSON`)
      if (err instanceof ManifestParseError) throw new BundleError(`${this.path}: index.json has no manifests list`)
      throw err
    }
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
    if (!this.archive.hasBlob(desc.digest))
      throw new BundleError(`${this.archive.path}: manifest ${desc.digest} is missing`)
    return this.archive.readBlob(desc.digest)
  }

  blobOpener(desc: Descriptor): Opener {
    return async (offset: number): Promise<OpenedStream> => {
      if (!this.archive.hasBlob(desc.digest))
        throw new BundleError(`${this.archive.path}: blob ${desc.digest} is missing`)
      const e = this.archive.entry(OciArchive.blobName(desc.digest))
      const from = Math.min(Math.max(0, offset), e.size)
      if (e.size - from <= WHOLE_BLOB) {
        // Small: read whole through the archive's open handle, no file opened per blob.
        const bytes = await this.archive.readRange(e.offset + from, e.size - from)
        return {
          stream: Readable.from([bytes], {objectMode: false}),
          bytes,
          start: from,
          total: e.size,
          url: `${this.archive.path}#${e.name}`,
        }
      }
      return {
        stream: this.archive.streamRange(e.offset + from, e.size - from),
        start: from,
        total: e.size,
        url: `${this.archive.path}#${e.name}`,
      }
    }
  }
}
