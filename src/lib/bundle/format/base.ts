import {createHash} from 'node:crypto'
import {readFile, stat} from 'node:fs/promises'
import {join} from 'node:path'

import type {BundleLock, LockBase, LockFile} from '../../bundle-json.js'
import {UsageError} from '../../errors.js'
import {BUNDLE_FILES} from './bundle-files.js'
import {parseBundleLock} from './read-lock.js'

/** One `--since BASE`: an earlier bundle folder, its bundle.json, or an inventory file. */
export interface Base {
  /** The file read (BASE/bundle.json for a folder). */
  file: string
  lock: BundleLock
  /** What bundle.json's `base` records of it. */
  entry: LockBase
}

/** What the bases hold, taken together: the digests a delta leaves out and the files it need not carry. */
export interface BaseContent {
  bases: Base[]
  /** Every image, manifest, index, config and layer digest any base lists. */
  digests: Set<string>
  /** `path\0sha256` of every file any base lists. */
  files: Set<string>
}

/** Read each BASE; a missing or malformed one is a usage error naming it. */
export async function readBases(paths: string[]): Promise<BaseContent> {
  const bases: Base[] = []
  for (const p of paths) bases.push(await readBase(p))
  return baseContent(bases)
}

export async function readBase(path: string): Promise<Base> {
  const st = await stat(path).catch(() => undefined)
  if (!st) throw new UsageError(`--since ${path}: no such bundle folder or file`)
  const file = st.isDirectory() ? join(path, BUNDLE_FILES.lock) : path
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new UsageError(`--since ${path}: cannot read ${file}: ${(err as Error).message}`)
  }
  let lock: BundleLock
  try {
    lock = parseBundleLock(bytes.toString('utf8'), file)
  } catch (err) {
    throw new UsageError(`--since ${path}: ${(err as Error).message}`, {details: (err as {details?: string[]}).details})
  }
  const entry: LockBase = {
    name: lock.name,
    ...(lock.version === undefined ? {} : {version: lock.version}),
    lockSha256: createHash('sha256').update(bytes).digest('hex'),
  }
  return {file, lock, entry}
}

export function baseContent(bases: Base[]): BaseContent {
  const digests = new Set<string>()
  const files = new Set<string>()
  for (const {lock} of bases) {
    // A delta's lock lists everything (fromBase or not): what it left out, its own bases hold.
    for (const i of lock.images) digests.add(i.digest)
    for (const b of lock.blobs ?? []) digests.add(b.digest)
    for (const f of lock.files) files.add(fileKey(f))
  }
  return {bases, digests, files}
}

/** A file is the same across bundles when its mirrored path and its sha256 are. */
export function fileKey(f: Pick<LockFile, 'path' | 'sha256'>): string {
  return `${f.path}\0${f.sha256}`
}
