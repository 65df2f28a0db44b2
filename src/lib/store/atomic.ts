import {randomBytes} from 'node:crypto'
import {type FileHandle, mkdir, open, rename, rm} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

/** A temporary name beside `target`, so the final rename stays on one filesystem. */
export function tempNameBeside(target: string): string {
  return join(dirname(target), `.${basename(target)}.airlock-${process.pid}-${randomBytes(4).toString('hex')}.tmp`)
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
