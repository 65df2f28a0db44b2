import pLimit from 'p-limit'

import type {LockFile} from '../bundle-json.js'
import {DEFAULT_CONCURRENCY} from '../defaults.js'

/**
 * What a target already holds, read only: the checks a delta import runs
 * before it writes anything, and what `airlock inventory` records.
 */

/** The files of `files` that `holds` finds, asked `concurrency` at a time. */
export async function filesHeld(
  files: LockFile[],
  holds: (f: LockFile) => Promise<boolean>,
  concurrency = DEFAULT_CONCURRENCY,
): Promise<Set<LockFile>> {
  const limit = pLimit(concurrency)
  const held = new Set<LockFile>()
  await Promise.all(files.map((f) => limit(async () => void ((await holds(f)) && held.add(f)))))
  return held
}

/** Something a delta leaves to its base that the target does not hold. */
export interface MissingFromTarget {
  /** e.g. `sha256:… (layer) for docker.io/library/nginx:1.25.3 in 127.0.0.1:5000/library/nginx`, or a file path. */
  what: string
  size: number
}
