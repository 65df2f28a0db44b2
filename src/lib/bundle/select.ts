import {FailureError} from '../errors.js'
import type {Manifest} from '../manifest/types.js'
import type {BundleLock, LockFile} from './lock.js'

/** binaries live under files/, packages and charts under packages/: a path is unique within its tree. */
function fileKey(tree: 'files' | 'packages', path: string): string {
  return `${tree}/${path}`
}

function treeOf(f: {kind: LockFile['kind']}): 'files' | 'packages' {
  return f.kind === 'binary' ? 'files' : 'packages'
}

/**
 * The store's records narrowed to what a manifest names: its images (by
 * normalized reference) and files (by mirrored path), under the manifest's
 * name and version. Other content the store holds stays out of the bundle.
 * Anything the manifest names that the store lacks is an error listing each.
 */
export function selectRecords(records: BundleLock, manifest: Manifest): BundleLock {
  const images = new Map(records.images.map((i) => [i.ref, i]))
  const files = new Map(records.files.map((f) => [fileKey(treeOf(f), f.path), f]))
  const missing: string[] = []
  const lock: BundleLock = {
    apiVersion: 'airlock/v1',
    name: manifest.name,
    ...(manifest.version === undefined ? {} : {version: manifest.version}),
    images: [],
    files: [],
  }
  for (const e of manifest.images) {
    const found = images.get(e.name)
    if (found) lock.images.push(found)
    else missing.push(`image ${e.name}`)
  }
  const seen = new Set<string>()
  for (const e of [...manifest.binaries, ...manifest.packages]) {
    const key = fileKey(treeOf(e), e.path)
    if (seen.has(key)) continue
    seen.add(key)
    const found = files.get(key)
    if (found) lock.files.push(found)
    else missing.push(`${e.kind} ${e.path}`)
  }
  if (missing.length > 0) {
    throw new FailureError(`the store lacks ${missing.length} entr${missing.length === 1 ? 'y' : 'ies'} of ${manifest.file}; nothing was bundled`, {
      details: missing,
      suggestions: [`run \`airlock pull ${manifest.file}\` with the same --store first`],
    })
  }
  return lock
}
