import {createHash, hash as hashOnce} from 'node:crypto'
import {pipeline, Readable, Transform, type TransformCallback} from 'node:stream'
import {createGunzip} from 'node:zlib'

import type {BundleLock, LockFile} from '../../bundle-json.js'
import {relativePathProblem} from '../../content/paths.js'
import {AirlockError, BundleError, IntegrityError} from '../../errors.js'
import {padded, type TarHeader} from '../../tar/headers.js'
import {readTarBatches, wholeBody} from '../../tar/reader.js'
import {plural} from '../../ui/table.js'
import {BUNDLE_FILES, TOP_FOLDERS} from './bundle-files.js'
import type {BundleFolder} from './bundle-folder.js'
import {PartsReader} from './parts.js'

/**
 * The one place that reads a bundle's `.tar.gz` for an import and refuses
 * what a hostile or broken archive could smuggle in. Both sinks (an nginx
 * root, an S3 bucket) consume these entries and never see a raw tar header.
 */

export type ArchiveKind = 'files' | 'packages'

export const ARCHIVES: {kind: ArchiveKind; name: string; top: string}[] = [
  {kind: 'files', name: BUNDLE_FILES.files, top: TOP_FOLDERS.files},
  {kind: 'packages', name: BUNDLE_FILES.packages, top: TOP_FOLDERS.packages},
]

/** The longest entry name accepted; mirrored paths are far shorter (PATH_MAX is 4096). */
export const MAX_NAME = 4096

export interface BundleEntry {
  /** Where it goes: relative to the root or the prefix, top folder stripped. */
  path: string
  file: LockFile
  executable: boolean
  /**
   * The entry's bytes, hashed as they flow. The iteration ends normally only
   * when size and sha256 matched `bundle.json`; otherwise it throws an
   * IntegrityError before the last chunk is acknowledged, so a sink that
   * commits after the loop never commits bad content. A sink that does not
   * need the bytes (a skipped file) may leave them: the reader drains them.
   */
  body: AsyncIterable<Buffer>
  /** A small file's whole bytes, checked against `bundle.json` already; `body` then yields just these. */
  bytes?: Buffer
}

/** The lock's files that live in one archive: binaries in offline-files, packages and charts in component-tools; a delta's left-out files in neither. */
export function lockFilesOf(lock: BundleLock, kind: ArchiveKind): LockFile[] {
  return lock.files.filter((f) => !f.fromBase && (kind === 'files' ? f.kind === 'binary' : f.kind !== 'binary'))
}

/**
 * Paths of `kind`'s archive that the other archive writes instead. Both
 * trees are imported into one namespace, and a package at a binary's path
 * is the same content (read-lock.ts refuses another sha256 there), so it is
 * written once: as the binary, whose archive mode is the one kept.
 */
export function writtenByOtherArchive(lock: BundleLock, kind: ArchiveKind): Set<string> {
  if (kind === 'files') return new Set()
  const binaries = new Set(lockFilesOf(lock, 'files').map((f) => f.path))
  return new Set(
    lockFilesOf(lock, 'packages')
      .filter((f) => binaries.has(f.path))
      .map((f) => f.path),
  )
}

/**
 * Check a raw entry name and strip its top folder. Returns the relative
 * path, or `''` for the top folder itself. Throws BundleError naming why.
 */
export function checkEntryPath(raw: string, top: string): string {
  const show = JSON.stringify(raw.length > 120 ? `${raw.slice(0, 120)}...` : raw)
  const refuse = (why: string): never => {
    throw new BundleError(`refused entry ${show}: ${why}`)
  }
  if (raw.length > MAX_NAME) refuse(`name of ${raw.length} characters`)
  // A tar name may start with ./ and a folder's ends with /; neither changes what it names.
  const name = (raw.startsWith('./') ? raw.slice(2) : raw).replace(/\/+$/, '')
  const why = relativePathProblem(name)
  if (why) refuse(why)
  const parts = name.split('/')
  if (parts[0] !== top) refuse(`outside the top folder ${top}/`)
  return parts.slice(1).join('/')
}

/**
 * Why an entry of a bundle's `.tar.gz` is neither a regular file nor a
 * folder (a link, a device, a fifo, a type we do not know), or undefined.
 * Only files and folders belong in a bundle: the one check of entry types,
 * for imports and verify alike.
 */
export function entryTypeProblem(header: Pick<TarHeader, 'type' | 'typeflag' | 'linkpath'>): string | undefined {
  switch (header.type) {
    case 'file':
    case 'directory':
      return undefined
    case 'symlink':
      return `symbolic link to ${JSON.stringify(header.linkpath ?? '')}`
    case 'hardlink':
      return `hard link to ${JSON.stringify(header.linkpath ?? '')}`
    case 'char-device':
    case 'block-device':
    case 'fifo':
      return `a ${header.type.replace('-', ' ')}`
    default:
      return `unsupported entry type ${JSON.stringify(header.typeflag)}`
  }
}

/**
 * The most decompressed bytes a well-formed archive of these files can
 * have: data rounded to blocks, a header and a long-name record for every
 * file and parent folder, the end marker and record padding. A gzip bomb
 * stops here, not when the disk is full.
 */
export function maxTarBytes(files: LockFile[], top: string): number {
  const meta = (p: string) => 1024 + padded(Buffer.byteLength(p) * 2 + 256)
  const dirs = new Set<string>([top])
  let total = 0
  for (const f of files) {
    const full = `${top}/${f.path}`
    total += padded(f.size) + meta(full)
    for (let slash = full.indexOf('/'); slash !== -1; slash = full.indexOf('/', slash + 1))
      dirs.add(full.slice(0, slash))
  }
  for (const d of dirs) total += meta(d)
  return total + 64 * 1024
}

/** Fails the stream once more than `cap` bytes passed: the decompression cap of maxTarBytes. */
export class ByteCap extends Transform {
  private n = 0
  constructor(
    private readonly cap: number,
    private readonly what: string,
  ) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.n += chunk.length
    if (this.n > this.cap) {
      cb(
        new BundleError(
          `${this.what}: decompresses to more than the ${this.cap} bytes bundle.json accounts for (a gzip bomb?)`,
        ),
      )
      return
    }
    cb(null, chunk)
  }
}

/** The bytes of a file as read (their count and sha256) held to bundle.json: an IntegrityError unless both match. */
function checkRead(file: LockFile, label: string, size: number, sha256: string): void {
  if (size !== file.size) throw new IntegrityError(label, `${file.size} bytes`, `${size} bytes`)
  if (sha256 !== file.sha256) throw new IntegrityError(label, `sha256:${file.sha256}`, `sha256:${sha256}`)
}

async function* verified(
  body: AsyncIterable<Buffer>,
  file: LockFile,
  label: string,
  what: string,
): AsyncGenerator<Buffer> {
  const hash = createHash('sha256')
  let n = 0
  try {
    for await (const c of body) {
      n += c.length
      hash.update(c)
      yield c
    }
  } catch (err) {
    // A broken stream surfaces inside whichever body is being read.
    throw asBundleError(err, what)
  }
  checkRead(file, label, n, hash.digest('hex'))
}

function asBundleError(err: unknown, what: string): unknown {
  if (err instanceof AirlockError) return err
  const e = err as NodeJS.ErrnoException
  if (typeof e?.code === 'string' && e.code.startsWith('Z_'))
    return new BundleError(`${what}: corrupt gzip: ${e.message}`, {cause: err})
  if (e?.code === 'ENOENT') return new BundleError(`${what}: missing`, {cause: err})
  return err
}

/**
 * The checked file entries of one of the bundle's `.tar.gz`, in archive
 * order, in batches (see readTarBatches): a small file comes whole with its
 * `bytes` checked already, a bigger one checks itself as its body is read
 * and is the last of its batch; it must be consumed before the next batch
 * is asked for (the archive is one stream). Refuses absolute paths, `..`,
 * links, devices, fifos, NUL bytes, over-long names, entries `bundle.json`
 * does not list (or lists with another size), duplicates, and a stream that
 * decompresses past what the lock accounts for; at the end, every listed
 * file must have been seen. The raw bytes of each file (each part) are
 * hashed as they are read, and read to the end once the entries are: when
 * the iteration ends normally, `digests` holds the sha256 of each by name,
 * for SHA256SUMS.
 */
export async function* bundleBatches(
  bundle: BundleFolder,
  kind: ArchiveKind,
  digests?: Map<string, string>,
): AsyncGenerator<BundleEntry[]> {
  const name = ARCHIVES.find((a) => a.kind === kind)!.name
  let reader: PartsReader
  try {
    reader = new PartsReader(await bundle.parts(name))
  } catch (err) {
    throw asBundleError(err, name)
  }
  yield* archiveBatches(Readable.from(reader.chunks(), {objectMode: false}), bundle.lock, kind)
  // Past the tar's end marker: the rest of the file counts for SHA256SUMS too.
  try {
    await reader.finish()
  } catch (err) {
    throw asBundleError(err, name)
  }
  for (const [part, hex] of reader.digests) digests?.set(part, hex)
}

/** As bundleBatches, from an already opened `.tar.gz` stream. */
export async function* archiveBatches(
  source: Readable,
  lock: BundleLock,
  kind: ArchiveKind,
): AsyncGenerator<BundleEntry[]> {
  const archive = ARCHIVES.find((a) => a.kind === kind)!
  const files = lockFilesOf(lock, kind)
  const byPath = new Map(files.map((f) => [f.path, f]))
  const seen = new Set<string>()
  const what = archive.name
  const gunzip = createGunzip({chunkSize: 256 * 1024})
  const capped = new ByteCap(maxTarBytes(files, archive.top), what)
  const stream = pipeline(source, gunzip, capped, () => {})
  /** The listed file an entry is, or undefined for a folder; throws naming why it is refused. */
  const listed = (header: TarHeader): {rel: string; file: LockFile} | undefined => {
    let rel: string
    try {
      rel = checkEntryPath(header.path, archive.top)
    } catch (err) {
      throw new BundleError(`${what}: ${(err as Error).message}`)
    }
    const refuse = (why: string): never => {
      throw new BundleError(`${what}: refused entry ${JSON.stringify(header.path)}: ${why}`)
    }
    if (header.type === 'directory') return undefined
    const why = entryTypeProblem(header)
    if (why) refuse(why)
    if (rel === '') refuse('the top folder is not a file')
    const file = byPath.get(rel) ?? refuse('not listed in bundle.json')
    if (seen.has(rel)) refuse('appears twice')
    seen.add(rel)
    if (header.size > file.size) refuse(`${header.size} bytes, bigger than the ${file.size} bundle.json says`)
    if (header.size !== file.size) refuse(`${header.size} bytes, bundle.json says ${file.size}`)
    return {rel, file}
  }
  try {
    for await (const items of readTarBatches(stream, what)) {
      const out: BundleEntry[] = []
      for (const {header, data, body} of items) {
        const entry = listed(header)
        if (!entry) continue
        const {rel, file} = entry
        const executable = (header.mode & 0o111) !== 0
        const label = `${what}: ${rel}`
        if (data) {
          checkRead(file, label, data.length, hashOnce('sha256', data, 'hex'))
          out.push({path: rel, file, executable, bytes: data, body: wholeBody(data)})
        } else {
          out.push({path: rel, file, executable, body: verified(body, file, label, what)})
        }
      }
      if (out.length > 0) yield out
    }
  } catch (err) {
    throw asBundleError(err, what)
  } finally {
    stream.destroy()
  }
  const missing = files.filter((f) => !seen.has(f.path))
  if (missing.length > 0) {
    throw new BundleError(
      `${what}: ${plural(missing.length, 'file')} listed in bundle.json ${missing.length === 1 ? 'is' : 'are'} not in the archive`,
      {
        details: missing.slice(0, 20).map((f) => f.path),
      },
    )
  }
}
