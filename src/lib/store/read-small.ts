import {closeSync, openSync, readSync} from 'node:fs'

import {FailureError} from '../errors.js'

/** Files up to this size are read whole, at once, where thousands of them are read in a row. */
export const SMALL_FILE = 64 << 10

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
