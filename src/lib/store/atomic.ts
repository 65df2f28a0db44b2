import {execFile} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {type FileHandle, mkdir, open, rename, rm} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

import {MAX_SEGMENT_BYTES} from '../content/paths.js'

/** The tail of this process's temporary names: a random start, then counted (a name costs no call to the random source). */
let nextTempTail = randomBytes(4).readUInt32BE(0)

/** What a temporary name adds to its stem: a leading dot and `.airlock-<pid>-<8 hex>.tmp`, a pid of up to 10 digits. */
const TEMP_NAME_EXTRA = 1 + '.airlock-'.length + 10 + 1 + 8 + '.tmp'.length

/** The longest stem, so that the temporary name of any name up to NAME_MAX is itself a name. */
const MAX_STEM_BYTES = MAX_SEGMENT_BYTES - TEMP_NAME_EXTRA

/**
 * A file name as its temporary names carry it: itself, or, where the
 * temporary name would pass NAME_MAX, its first bytes (whole characters)
 * and `~` and 16 hex digits of its sha256, so that every name a bundle may
 * hold can be staged beside its target, and a stale temporary file can still
 * be told apart.
 */
export function tempStem(name: string): string {
  if (Buffer.byteLength(name) <= MAX_STEM_BYTES) return name
  const tag = `~${createHash('sha256').update(name).digest('hex').slice(0, 16)}`
  let prefix = ''
  let bytes = 0
  for (const ch of name) {
    bytes += Buffer.byteLength(ch)
    if (bytes > MAX_STEM_BYTES - tag.length) break
    prefix += ch
  }
  return prefix + tag
}

/** A temporary name beside `target`, so the final rename stays on one filesystem. */
export function tempNameBeside(target: string): string {
  const tail = nextTempTail.toString(16).padStart(8, '0')
  nextTempTail = (nextTempTail + 1) >>> 0
  return join(dirname(target), `.${tempStem(basename(target))}.airlock-${process.pid}-${tail}.tmp`)
}

const TEMP_NAME = /^\.(.+)\.airlock-(\d+)-[0-9a-f]{8}\.tmp$/

/** A name tempNameBeside makes, read back: the target's name (its tempStem) and the pid that made it; undefined for any other name. */
export function parseTempName(name: string): {target: string; pid: number} | undefined {
  const m = TEMP_NAME.exec(name)
  return m ? {target: m[1], pid: Number(m[2])} : undefined
}

/** Write all of `buf` at the file's position (one write may take only part of it). */
export async function writeAll(fh: FileHandle, buf: Uint8Array): Promise<void> {
  let off = 0
  while (off < buf.length) off += (await fh.write(buf, off, buf.length - off)).bytesWritten
}

/** fsync a file or directory by path. */
export async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try {
    await fh.sync()
  } finally {
    await fh.close()
  }
}

/**
 * Flush to disk everything written on the filesystem that holds `path`, in
 * one call: syncfs(2), through `sync -f` (coreutils and BusyBox have it; Node
 * has no binding). A thousand staged files then cost one flush where an
 * fsync each costs a round trip to the disk each. False when it could not
 * (no such `sync`: another system or an old coreutils), and the caller
 * flushes file by file.
 */
export function syncFilesystem(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('sync', ['-f', path], (err) => resolve(!err))
  })
}

/**
 * Make `tmp` visible as `target`: fsync the data, rename, fsync the folder.
 * The only way a verified file gets its final name.
 */
export async function commitFile(tmp: string, target: string): Promise<void> {
  await fsyncPath(tmp)
  await mkdir(dirname(target), {recursive: true})
  await rename(tmp, target)
  await fsyncPath(dirname(target)).catch(() => {})
}

/** Write small content (index.json, a manifest) atomically. */
export async function writeFileAtomic(target: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await mkdir(dirname(target), {recursive: true})
  const tmp = tempNameBeside(target)
  try {
    const fh = await open(tmp, 'wx', mode)
    try {
      await fh.writeFile(data)
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, target)
    await fsyncPath(dirname(target)).catch(() => {})
  } catch (err) {
    await rm(tmp, {force: true})
    throw err
  }
}
