import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {type FileHandle, mkdir, open, rename, rm} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

/** The tail of this process's temporary names: a random start, then counted (a name costs no call to the random source). */
let nextTempTail = randomBytes(4).readUInt32BE(0)

/** A temporary name beside `target`, so the final rename stays on one filesystem. */
export function tempNameBeside(target: string): string {
  const tail = nextTempTail.toString(16).padStart(8, '0')
  nextTempTail = (nextTempTail + 1) >>> 0
  return join(dirname(target), `.${basename(target)}.airlock-${process.pid}-${tail}.tmp`)
}

const TEMP_NAME = /^\.(.+)\.airlock-(\d+)-[0-9a-f]{8}\.tmp$/

/** A name tempNameBeside makes, read back: the target's name and the pid that made it; undefined for any other name. */
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
