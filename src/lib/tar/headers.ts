import {Header} from 'tar/header'

import {BundleError} from '../errors.js'

/**
 * The one tar header decoder. It turns 512-byte header blocks, and the
 * bodies of the metadata records among them (pax `x`/`g`, GNU `L`/`K`),
 * into entries, and holds the state between a metadata record and the entry
 * it describes. It never reads bytes itself: the streaming reader
 * (`readTar`) and the indexing reader (`OciArchive`) fetch blocks and bodies
 * their own way and drive this.
 *
 * node-tar's `Header` decodes the fields of a block: name with its ustar
 * prefix, octal and base-256 numbers, link name, type, checksum. Pax bodies
 * are parsed here instead (see `parsePax`).
 */

export const BLOCK = 512
/** Pax and GNU long-name records are metadata; anything bigger is hostile. */
export const MAX_META = 1024 * 1024

export type TarEntryType =
  'file' | 'directory' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo' | 'other'

export interface TarHeader {
  /** The name as stored (pax or GNU long name applied); a `./` prefix is left for the caller. */
  path: string
  type: TarEntryType
  /** The raw typeflag, for messages about `other`. */
  typeflag: string
  /** Bytes of data that follow the header (before padding to a block). */
  size: number
  mode: number
  linkpath?: string
}

/** What a header block turned out to be. */
export type TarStep =
  /** The end-of-archive marker (a zero block). */
  | {kind: 'end'}
  /** A metadata record: pass its first `size` bytes to `meta()`; `padded(size)` bytes follow the header. */
  | {kind: 'meta'; size: number}
  | {kind: 'entry'; header: TarHeader}

/** Bytes a body of `size` takes in the archive, padding included. */
export function padded(size: number): number {
  return Math.ceil(size / BLOCK) * BLOCK
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

const META = new Set(['x', 'g', 'L', 'K'])

export class TarHeaderDecoder {
  private pax: Map<string, string> | undefined
  private longName: string | undefined
  private longLink: string | undefined
  /** The typeflag of the metadata record whose body `meta()` expects next. */
  private awaiting: string | undefined

  /** `what` names the archive in messages. */
  constructor(private readonly what: string) {}

  /** Decode the header block found at byte `at` of the archive. */
  block(block: Buffer, at: number): TarStep {
    if (this.awaiting !== undefined) throw new Error('tar decoder: a metadata body is due before the next header')
    if (block.every((b) => b === 0)) {
      if (this.pax || this.longName !== undefined || this.longLink !== undefined) {
        throw new BundleError(`bad archive: ${this.what} ends after a metadata record`)
      }
      return {kind: 'end'}
    }
    let h: Header
    try {
      h = new Header(block)
    } catch (err) {
      // node-tar throws plain Errors for base-256 numbers that are malformed or past 2^53.
      throw new BundleError(`bad archive: ${this.what}: bad tar header at byte ${at}: ${(err as Error).message}`)
    }
    if (!h.cksumValid && !signedChecksumOk(block, h.cksum)) {
      throw new BundleError(
        `bad archive: ${this.what}: header checksum mismatch at byte ${at} (not a tar archive, or a corrupt one)`,
      )
    }
    // node-tar leaves a number it cannot read undefined (and a negative size too) rather than failing.
    if (h.size === undefined)
      throw new BundleError(`bad archive: ${this.what}: bad tar header at byte ${at}: size is not a number`)
    if (h.mode === undefined)
      throw new BundleError(`bad archive: ${this.what}: bad tar header at byte ${at}: mode is not a number`)
    const typeflag = String.fromCharCode(block[156])
    if (META.has(typeflag)) {
      if (h.size > MAX_META) throw new BundleError(`bad archive: ${this.what}: metadata record of ${h.size} bytes`)
      this.awaiting = typeflag
      return {kind: 'meta', size: h.size}
    }
    let path = h.path ?? ''
    let linkpath = h.linkpath || undefined
    if (this.longName !== undefined) path = this.longName
    if (this.longLink !== undefined) linkpath = this.longLink
    let size = h.size
    const pax = this.pax
    if (pax?.has('path')) path = pax.get('path')!
    if (pax?.has('linkpath')) linkpath = pax.get('linkpath')!
    if (pax?.has('size')) {
      const s = pax.get('size')!
      if (!/^\d+$/.test(s) || !Number.isSafeInteger(Number(s))) throw new BundleError(`bad pax header: size ${s}`)
      size = Number(s)
    }
    this.pax = this.longName = this.longLink = undefined
    // node-tar reads an old-style regular file whose name ends in `/` as a folder (and gives it no data).
    const type = h.typeKey === '5' ? 'directory' : (TYPES[typeflag] ?? 'other')
    // Hard links and folders have no data whatever their size field says; every other type
    // has as much as it says, as GNU tar reads them: a reader that disagreed would take data for headers.
    const dataSize = type === 'hardlink' || type === 'directory' ? 0 : size
    return {kind: 'entry', header: {path, type, typeflag, size: dataSize, mode: h.mode, linkpath}}
  }

  /** The body of the metadata record `block()` just announced, cut to its `size`. */
  meta(body: Buffer): void {
    const type = this.awaiting
    if (type === undefined) throw new Error('tar decoder: no metadata record announced')
    this.awaiting = undefined
    if (type === 'x') this.pax = parsePax(body)
    else if (type === 'L') this.longName = cstring(body)
    else if (type === 'K') this.longLink = cstring(body)
    // Global records (`g`) set defaults such as mtime or charset; node-tar and GNU tar never take a
    // path from them and no writer puts a size there. Parsed so that a malformed one still fails.
    else parsePax(body)
  }
}

/** A GNU long name or link: NUL-terminated (usually) text. */
function cstring(data: Buffer): string {
  const nul = data.indexOf(0)
  return (nul === -1 ? data : data.subarray(0, nul)).toString('utf8')
}

/**
 * Old Unix tars summed the header as signed bytes; GNU tar accepts either sum
 * and so do we. node-tar only checks the unsigned one (`cksumValid`).
 */
function signedChecksumOk(block: Buffer, want: number | undefined): boolean {
  if (want === undefined) return false
  let signed = 0
  for (let i = 0; i < BLOCK; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : block[i]
    signed += b > 127 ? b - 256 : b
  }
  return want === signed
}

/**
 * `"%d key=value\n"` records. Lengths are in bytes, values may hold any byte
 * but a newline ends them. Not node-tar's `Pax.parse`: that splits the
 * decoded text on newlines and silently drops a record it cannot read, cuts
 * a value at its first NUL and reads `size` with `+` (so `0x10` is 16). Each
 * of those lets a crafted archive show us another name or size than GNU tar
 * sees (a `path` cut at a NUL would pass the importers' name checks), so a
 * malformed record is refused here instead.
 */
export function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>()
  let pos = 0
  while (pos < body.length) {
    if (body[pos] === 0) break
    const space = body.indexOf(0x20, pos)
    if (space === -1) throw new BundleError('bad pax header: record without length')
    const len = Number(body.subarray(pos, space).toString('ascii'))
    if (!Number.isInteger(len) || len <= space - pos + 1 || pos + len > body.length)
      throw new BundleError('bad pax header: bad record length')
    const record = body.subarray(space + 1, pos + len)
    if (record[record.length - 1] !== 0x0a) throw new BundleError('bad pax header: record not ended by a newline')
    const eq = record.indexOf(0x3d)
    if (eq === -1) throw new BundleError('bad pax header: record without =')
    out.set(record.subarray(0, eq).toString('utf8'), record.subarray(eq + 1, record.length - 1).toString('utf8'))
    pos += len
  }
  return out
}
