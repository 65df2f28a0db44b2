import {lstat, realpath} from 'node:fs/promises'
import {join, sep} from 'node:path'

import pLimit from 'p-limit'

import type {LockFile} from '../lock.js'
import {DEFAULT_CONCURRENCY} from '../defaults.js'
import {hashFile} from '../fetch/hashing-stream.js'

/**
 * What a target already holds, read only: the checks a delta import runs
 * before it writes anything, and what `airlock inventory` records.
 */

/** The files of `files` that `holds` finds, asked `concurrency` at a time. */
export async function filesHeld(files: LockFile[], holds: (f: LockFile) => Promise<boolean>, concurrency = DEFAULT_CONCURRENCY): Promise<Set<LockFile>> {
  const limit = pLimit(concurrency)
  const held = new Set<LockFile>()
  await Promise.all(files.map((f) => limit(async () => void ((await holds(f)) && held.add(f)))))
  return held
}

/**
 * A web server root holds a file when a regular file is at its mirrored
 * path (no link on the way leads out of the root) with its size and sha256
 * (the whole file is read: a file of the right size with other bytes is not
 * the file).
 */
export async function rootHolds(root: string, f: Pick<LockFile, 'path' | 'size' | 'sha256'>): Promise<boolean> {
  const path = join(root, ...f.path.split('/'))
  const st = await lstat(path).catch(() => undefined)
  if (!st?.isFile() || st.size !== f.size) return false
  const real = await realpath(path).catch(() => undefined)
  const realRoot = await realpath(root).catch(() => root)
  if (!real || !real.startsWith(realRoot + sep)) return false
  const h = await hashFile(path)
  return h !== undefined && h.size === f.size && h.digest === `sha256:${f.sha256}`
}
