import {resolve} from 'node:path'

import type {BundleLock, LockOsRepository} from '../bundle-json.js'
import {nodeConfigOf} from '../ospkgs/node-config.js'
import {writeFileAtomic} from '../store/atomic.js'

/** A node's source file for the OS repositories at one mirrored path, as written beside them. */
export interface OsSourceFile {
  /** Relative to the web root: the repository's path and the type's suffix (`deb.debian.org/debian.list`). */
  path: string
  text: string
}

/** Where the served root is named in source lines when the import was not told its URL. */
export const ENDPOINT_PLACEHOLDER = 'http://SERVER'

/**
 * The source files a node needs for the bundle's OS repositories (one per
 * type and mirrored path: an apt `.list` with a `deb [signed-by=...]` line
 * per suite, an rpm `.repo` stanza), the repositories served at
 * `endpoint` (or ENDPOINT_PLACEHOLDER). Every import writes these beside
 * the repositories.
 */
export function osSourceFiles(lock: BundleLock, endpoint?: string): OsSourceFile[] {
  const groups = new Map<string, LockOsRepository[]>()
  for (const r of lock.osRepositories ?? [])
    groups.set(`${r.type} ${r.path}`, [...(groups.get(`${r.type} ${r.path}`) ?? []), r])
  const base = (endpoint ?? ENDPOINT_PLACEHOLDER).replace(/\/+$/, '')
  return [...groups.values()].map((repos) => {
    const node = nodeConfigOf(repos[0].type)
    return {
      path: `${repos[0].path}${node.sourceSuffix}`,
      text: node.render(repos, `${base}/${repos[0].path}`, `${base}/${repos[0].key}`),
    }
  })
}

/** osSourceFiles written into the web root `root`. */
export async function writeOsSources(root: string, lock: BundleLock, endpoint?: string): Promise<OsSourceFile[]> {
  const files = osSourceFiles(lock, endpoint)
  for (const file of files) await writeFileAtomic(resolve(root, ...file.path.split('/')), file.text)
  return files
}
