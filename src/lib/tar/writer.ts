import {createHash} from 'node:crypto'

import {Header} from 'tar/header'
import {Pax} from 'tar/pax'

import {SEQUENTIAL_READ_BYTES} from '../defaults.js'
import {IntegrityError} from '../errors.js'
import {BLOCK, padded} from './headers.js'

/**
 * Reproducible tar headers. node-tar's Pack reads files itself, takes modes
 * from stat, follows readdir order and stamps each entry's own mtime; we
 * need fixed modes, a sorted order and to hash every byte we archive. So
 * node-tar only encodes headers (ustar, with a pax record for long names)
 * and the bodies are streamed by the bundle writer.
 */

export interface TarEntryMeta {
  /** Entry name; directories end with `/`. */
  path: string
  type: 'file' | 'directory'
  size: number
  mode: number
  /** Seconds since the epoch (SOURCE_DATE_EPOCH or 0). */
  mtime: number
}

/**
 * One node-tar Header for every entry, its fields set anew each time: it
 * only encodes here, and a new one per entry (its constructor copies every
 * field) cost as much again as the encoding, in a tar of thousands of small
 * blobs.
 */
const header = new Header({uid: 0, gid: 0, uname: '', gname: ''})
/** The Date of the last mtime encoded: one archive uses one. */
let lastMtime = {seconds: Number.NaN, date: new Date(0)}

/** The header block(s) of one entry: a pax record first when the name or size does not fit ustar. */
export function encodeHeader(meta: TarEntryMeta): Buffer {
  if (meta.mtime !== lastMtime.seconds) lastMtime = {seconds: meta.mtime, date: new Date(meta.mtime * 1000)}
  const mtime = lastMtime.date
  const size = meta.type === 'file' ? meta.size : 0
  header.path = meta.path
  header.mode = meta.mode
  header.size = size
  header.mtime = mtime
  header.type = meta.type === 'file' ? 'File' : 'Directory'
  // From Node's shared pool, zeroed: a tar of thousands of small blobs writes a header each, and a buffer of its own per header is garbage outside V8's heap.
  const block = Buffer.allocUnsafe(BLOCK).fill(0)
  const needPax = header.encode(block, 0)
  if (!needPax) return block
  // The pax record carries the real path (and size past 8 GiB); the ustar header keeps a truncated name for old readers.
  const pax = new Pax({path: meta.path, size, mtime, uid: 0, gid: 0}).encode()
  return Buffer.concat([pax, block])
}

/**
 * The size of the blocks a tar stream is handed on in. A tar written entry
 * by entry is mostly small pieces (a header, a small body, its padding), and
 * whatever takes them pays per piece: zlib takes every write to the thread
 * pool on its own, a file every write to the disk. SEQUENTIAL_READ_BYTES, for
 * the same reason as reads: a buffer freed is reused for the next one.
 */
export const TAR_BLOCK = SEQUENTIAL_READ_BYTES

/** The bytes of `chunks`, as they come, in blocks of `size` (the last one shorter); a chunk of a block or more passes as it is. */
export function inBlocks(chunks: AsyncIterable<Buffer>, size = TAR_BLOCK): AsyncGenerator<Buffer> {
  return gathered(chunks, size, () => Buffer.allocUnsafe(size))
}

/**
 * The one gathering of small pieces into blocks: the bytes of `chunks`, as
 * they come, copied into buffers of `size` from `block()` and handed on full
 * (the last one shorter); a chunk of `size` or more passes as it is, after
 * what was gathered before it. A block is asked for only once the one
 * before it was handed on and the taker came back for more, so `block` may
 * give the same buffer every time to a taker that is done with each block
 * when it asks for the next.
 */
export async function* gathered(
  chunks: AsyncIterable<Buffer> | Iterable<Buffer>,
  size: number,
  block: () => Buffer,
): AsyncGenerator<Buffer> {
  let buf: Buffer | undefined
  let used = 0
  for await (const chunk of chunks) {
    if (used > 0 && used + chunk.length > size) {
      yield buf!.subarray(0, used)
      buf = undefined
      used = 0
    }
    if (chunk.length >= size) {
      yield chunk
      continue
    }
    buf ??= block()
    used += chunk.copy(buf, used)
  }
  if (used > 0) yield buf!.subarray(0, used)
}

/** Zero bytes after a body up to the next block boundary. */
export function padding(size: number): Buffer {
  return ZEROS.subarray(0, padded(size) - size)
}

/** Shared by every padding (never written to). */
const ZEROS = Buffer.alloc(BLOCK)

/** What an entry's body must be, and whom to tell as it flows. */
export interface BodyCheck {
  size: number
  /** Hex sha256 the bytes must have; absent when the archive learns it (the digest is returned either way). */
  sha256?: string
  /** Names the content in errors, with a hint at the cause (a store file changed since it was pulled). */
  label: string
  onBytes?: (n: number) => void
}

/**
 * An entry's body passed through as it is read: counted, cut off past
 * `size`, hashed, and checked at its end against the size and sha256 it must
 * have; returns the hex sha256. Then its padding. The hot path of a bundle:
 * no stream object per entry, one hash update per chunk.
 */
export async function* checkedBody(
  chunks: AsyncIterable<Buffer> | Iterable<Buffer>,
  want: BodyCheck,
): AsyncGenerator<Buffer, string> {
  const hash = createHash('sha256')
  let n = 0
  for await (const chunk of chunks) {
    n += chunk.length
    if (n > want.size) throw new IntegrityError(want.label, `${want.size} bytes`, `more than ${want.size} bytes`)
    hash.update(chunk)
    want.onBytes?.(chunk.length)
    yield chunk
  }
  if (n !== want.size) throw new IntegrityError(want.label, `${want.size} bytes`, `${n} bytes`)
  const hex = hash.digest('hex')
  if (want.sha256 !== undefined && hex !== want.sha256) {
    throw new IntegrityError(want.label, `sha256:${want.sha256}`, `sha256:${hex}`)
  }
  yield padding(n)
  return hex
}

/** Two zero blocks end an archive. */
export function endOfArchive(): Buffer {
  return Buffer.alloc(2 * BLOCK)
}

/** Files get 0755 when any execute bit is set in the store, else 0644; folders 0755. */
export function normalMode(type: 'file' | 'directory', storeMode = 0): number {
  if (type === 'directory') return 0o755
  return storeMode & 0o111 ? 0o755 : 0o644
}

/**
 * Folder entries and files in one canonical order: a depth-first walk with
 * the children of every folder sorted by name (code units, not locale), each
 * folder right before its contents. `files` are `/`-separated paths.
 */
export function treeOrder(files: string[]): {path: string; type: 'file' | 'directory'}[] {
  const sorted = [...files].sort(comparePaths)
  const out: {path: string; type: 'file' | 'directory'}[] = []
  const emitted = new Set<string>()
  for (const f of sorted) {
    const segs = f.split('/')
    for (let i = 1; i < segs.length; i++) {
      const dir = `${segs.slice(0, i).join('/')}/`
      if (!emitted.has(dir)) {
        emitted.add(dir)
        out.push({path: dir, type: 'directory'})
      }
    }
    out.push({path: f, type: 'file'})
  }
  return out
}

/** Compare paths segment by segment, so `a/b` sorts with its folder `a` and before `a-b`. */
export function comparePaths(a: string, b: string): number {
  const sa = a.split('/')
  const sb = b.split('/')
  for (let i = 0; i < Math.min(sa.length, sb.length); i++) {
    if (sa[i] !== sb[i]) {
      // A folder and a file of the same prefix: the shorter array is the file unless segments differ.
      return sa[i] < sb[i] ? -1 : 1
    }
  }
  return sa.length - sb.length
}
