import {closeSync, openSync, readSync, statSync, writevSync} from 'node:fs'

import {FailureError} from '../errors.js'

/**
 * Small files, read, written and sized synchronously: where thousands of them
 * come in a row (a pull's or a bundle's tiny blobs), each round trip through
 * Node's thread pool costs ten times the call itself, and a missing file's
 * rejected promise costs an error with its stack.
 */

/** Files and bodies up to this size are read or taken whole, at once, where thousands of them come in a row. */
export const SMALL_FILE = 64 << 10

/** readSmall, or undefined where the file is missing or cannot be read (renamed meanwhile). */
export function readSmallOrUndefined(path: string, size: number): Buffer | undefined {
  try {
    return readSmall(path, size, () => path)
  } catch {
    return undefined
  }
}

/** The size of the regular file at `path`, or undefined when there is none (no error made for a missing one). */
export function sizeOnDisk(path: string): number | undefined {
  const st = statSync(path, {throwIfNoEntry: false})
  return st?.isFile() ? st.size : undefined
}

/** Write `chunks` as the whole of the file at `path` (created or truncated), in one writev where it can. */
export function writeSmall(path: string, chunks: readonly Buffer[]): void {
  const fd = openSync(path, 'w')
  try {
    const rest = chunks.filter((c) => c.length > 0)
    while (rest.length > 0) {
      let n = writevSync(fd, rest)
      // A short write: carry on from the first byte not written.
      while (rest.length > 0 && n >= rest[0].length) n -= rest.shift()!.length
      if (n > 0) rest[0] = rest[0].subarray(n)
    }
  } finally {
    closeSync(fd)
  }
}

/**
 * A small file's bytes, read synchronously: for thousands of small files the
 * round trips through Node's thread pool cost ten times the reads
 * themselves. Reads one byte more than `size` at most, so a file that grew
 * still fails its check; a missing file is a FailureError saying `missing()`
 * (made only then: thousands of reads would otherwise each build a message).
 */
export function readSmall(path: string, size: number, missing: () => string): Buffer {
  let fd: number
  try {
    fd = openSync(path, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new FailureError(missing())
    throw err
  }
  try {
    const buf = Buffer.allocUnsafe(Math.max(0, size) + 1)
    let n = 0
    for (;;) {
      const r = readSync(fd, buf, n, buf.length - n, n)
      if (r === 0) break
      n += r
      if (n === buf.length) break
    }
    return buf.subarray(0, n)
  } finally {
    closeSync(fd)
  }
}
