import {randomBytes} from 'node:crypto'
import {mkdir, open, rename, rm} from 'node:fs/promises'
import {basename, dirname, join} from 'node:path'

/** A temporary name beside `target`, so the final rename stays on one filesystem. */
export function tempNameBeside(target: string): string {
  return join(dirname(target), `.${basename(target)}.airlock-${process.pid}-${randomBytes(4).toString('hex')}.tmp`)
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
