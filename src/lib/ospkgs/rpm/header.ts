/**
 * The rpm file format (rpm's docs/manual/format.md): a 96-byte lead, the
 * signature header, padded to 8 bytes, the main header, then the
 * compressed payload. A header is the magic `8e ad e8 01`, four reserved
 * bytes, the count of index entries and the size of the store (big-endian),
 * the entries (tag, type, offset, count: 16 bytes each), then the store.
 */

export const LEAD_SIZE = 96
const LEAD_MAGIC = 0xedabeedb
const HEADER_MAGIC = Buffer.from([0x8e, 0xad, 0xe8, 0x01])
/** rpm refuses headers past 256 MiB (hdrblob's limit); so do we. */
const MAX_HEADER = 256 * 1024 * 1024

/** Tag numbers used here (rpmtag.h). */
export const TAG = {
  /** Signature header: header-only OpenPGP signatures (v4), and rpm 6's list of them. */
  SIG_DSA: 267,
  SIG_RSA: 268,
  SIG_SHA1: 269,
  SIG_SHA256: 273,
  SIG_OPENPGP: 278,
  /** Signature header: legacy header+payload signatures (v3). */
  SIG_PGP: 1002,
  SIG_GPG: 1005,
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  ARCH: 1022,
  PAYLOADDIGEST: 5092,
  PAYLOADDIGESTALGO: 5093,
} as const

const TYPE = {INT32: 4, STRING: 6, BIN: 7, STRING_ARRAY: 8, I18NSTRING: 9} as const

export interface HeaderEntry {
  tag: number
  type: number
  offset: number
  count: number
}

/** One parsed header: its exact bytes (what a v4 signature covers) and its entries. */
export class RpmHeader {
  readonly entries = new Map<number, HeaderEntry>()

  /** `bytes`: from the magic to the end of the store. */
  constructor(readonly bytes: Buffer) {
    const il = bytes.readUInt32BE(8)
    for (let i = 0; i < il; i++) {
      const at = 16 + i * 16
      const e = {
        tag: bytes.readUInt32BE(at),
        type: bytes.readUInt32BE(at + 4),
        offset: bytes.readInt32BE(at + 8),
        count: bytes.readUInt32BE(at + 12),
      }
      this.entries.set(e.tag, e)
    }
  }

  private get store(): Buffer {
    return this.bytes.subarray(16 + this.bytes.readUInt32BE(8) * 16)
  }

  bin(tag: number): Buffer | undefined {
    const e = this.entries.get(tag)
    if (!e || e.type !== TYPE.BIN) return undefined
    return this.store.subarray(e.offset, e.offset + e.count)
  }

  strings(tag: number): string[] | undefined {
    const e = this.entries.get(tag)
    if (!e || (e.type !== TYPE.STRING && e.type !== TYPE.STRING_ARRAY && e.type !== TYPE.I18NSTRING)) return undefined
    const store = this.store
    const out: string[] = []
    let at = e.offset
    const n = e.type === TYPE.STRING ? 1 : e.count
    for (let i = 0; i < n; i++) {
      const end = store.indexOf(0, at)
      if (end < 0) throw new Error(`header tag ${e.tag}: a string runs past the store`)
      out.push(store.toString('utf8', at, end))
      at = end + 1
    }
    return out
  }

  string(tag: number): string | undefined {
    return this.strings(tag)?.[0]
  }

  int32(tag: number): number | undefined {
    const e = this.entries.get(tag)
    if (!e || e.type !== TYPE.INT32) return undefined
    return this.store.readUInt32BE(e.offset)
  }
}

/**
 * The size of the header starting at `at` in `buf` (magic to end of store),
 * or undefined while `buf` does not yet hold its first 16 bytes. Throws
 * when the bytes there are no header.
 */
export function headerSize(buf: Buffer, at: number, what: string): number | undefined {
  if (buf.length < at + 16) return undefined
  if (!buf.subarray(at, at + 4).equals(HEADER_MAGIC)) throw new Error(`${what}: no rpm header magic at byte ${at}`)
  const il = buf.readUInt32BE(at + 8)
  const dl = buf.readUInt32BE(at + 12)
  const size = 16 + il * 16 + dl
  if (il > 0xffff || size > MAX_HEADER)
    throw new Error(`${what}: header at byte ${at} claims ${il} entries and ${dl} bytes of store`)
  return size
}

export interface RpmLayout {
  signature: RpmHeader
  header: RpmHeader
  /** Offset of the payload: the first byte after the main header. */
  payloadOffset: number
}

/**
 * Find the lead, the signature header and the main header in the first
 * bytes of an rpm file; undefined while `buf` is too short to hold them
 * (read more and call again). Throws when the bytes are no rpm package.
 */
export function parseLayout(buf: Buffer, what: string): RpmLayout | undefined {
  if (buf.length < LEAD_SIZE) return undefined
  if (buf.readUInt32BE(0) !== LEAD_MAGIC) throw new Error(`${what}: not an rpm package (no lead magic)`)
  const sigSize = headerSize(buf, LEAD_SIZE, what)
  if (sigSize === undefined) return undefined
  const sigEnd = LEAD_SIZE + sigSize
  const mainAt = sigEnd + ((8 - (sigSize % 8)) % 8)
  const mainSize = headerSize(buf, mainAt, what)
  if (mainSize === undefined || buf.length < mainAt + mainSize) return undefined
  return {
    signature: new RpmHeader(Buffer.from(buf.subarray(LEAD_SIZE, sigEnd))),
    header: new RpmHeader(Buffer.from(buf.subarray(mainAt, mainAt + mainSize))),
    payloadOffset: mainAt + mainSize,
  }
}
