import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {homedir} from 'node:os'
import {extname, join} from 'node:path'
import type {Readable} from 'node:stream'

import type {BundleLock} from '../bundle/lock.js'
import {BUNDLE_FILES} from '../bundle/lock.js'
import {importNginx} from '../importers/nginx.js'
import type {BundleError} from '../errors.js'
import {isRefusedBundle, refusedBundle, verifyBeforeImport} from '../importers/verify-first.js'
import type {Progress} from '../ui/index.js'

/**
 * The files of the bundle's two `.tar.gz`, readable by offset. A gzip
 * stream cannot be entered in the middle, so each bundle is unpacked once
 * into a cache folder, exactly as `import nginx` unpacks onto a web root:
 * verified, each file written under a temporary name and renamed only after
 * its size and sha256 matched and the archives matched SHA256SUMS, before
 * anything gets its final name. A second start finds the files there
 * and only hashes them again. The folder is keyed by the sha256 of
 * `bundle.json`, so two bundles never share one; only paths `bundle.json`
 * lists are ever served from it.
 */

export interface CachedFile {
  /** Absolute path in the cache. */
  file: string
  size: number
  sha256: string
  contentType: string
}

/** The default cache root: `$XDG_CACHE_HOME/airlock/serve`, else `~/.cache/airlock/serve`. */
export function defaultCacheRoot(): string {
  const xdg = process.env.XDG_CACHE_HOME
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache'), 'airlock', 'serve')
}

/** The cache folder of a bundle (and its bases, in order): `<root>/<first 16 hex of the sha256 of their bundle.json>`. */
export async function cacheFolder(root: string, dirs: string[]): Promise<string> {
  const h = createHash('sha256')
  for (const d of dirs) h.update(await readFile(join(d, BUNDLE_FILES.lock)))
  return join(root, h.digest('hex').slice(0, 16))
}

/**
 * Unpack (or find) the files of `dirs` (bases first, the bundle last) in
 * `folder`, verifying each whole bundle (its images too); returns every
 * served path. A bundle that
 * fails verification throws its BundleError and nothing new becomes visible.
 */
export async function prepareFiles(dirs: string[], locks: BundleLock[], folder: string, progress?: Progress): Promise<Map<string, CachedFile>> {
  for (const dir of dirs) {
    // import nginx checks the two archives it unpacks; the images, served from the tar as they are, are checked beside it.
    const [unpacked, images] = await Promise.allSettled([importNginx(dir, {root: folder, progress}), verifyBeforeImport(dir, ['images'], progress, 'served')])
    const failed = [images, unpacked].filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as unknown)
    // A refused bundle is refused in serve's words, with every problem verify lists (each refusal ran the full check).
    const refused = failed.find(isRefusedBundle) as BundleError | undefined
    if (refused) throw refusedBundle(dir, refused.details, 'served')
    if (failed.length > 0) throw failed[0]
  }
  const table = new Map<string, CachedFile>()
  for (const lock of locks) {
    for (const f of lock.files) {
      if (table.has(f.path)) continue
      table.set(f.path, {file: join(folder, ...f.path.split('/')), size: f.size, sha256: f.sha256, contentType: contentTypeOf(f.path)})
    }
  }
  return table
}

/** Reads go in large chunks: the hot path of a download. */
const READ_CHUNK = 256 << 10

export function openCached(f: CachedFile, start: number, end: number): Readable {
  return createReadStream(f.file, {start, end, highWaterMark: READ_CHUNK})
}

const TYPES: Record<string, string> = {
  '.gz': 'application/gzip',
  '.tgz': 'application/gzip',
  '.xz': 'application/x-xz',
  '.zst': 'application/zstd',
  '.bz2': 'application/x-bzip2',
  '.tar': 'application/x-tar',
  '.zip': 'application/zip',
  '.yaml': 'text/yaml; charset=utf-8',
  '.yml': 'text/yaml; charset=utf-8',
  '.json': 'application/json',
  '.txt': 'text/plain; charset=utf-8',
  '.sha256': 'text/plain; charset=utf-8',
  '.sha256sum': 'text/plain; charset=utf-8',
  '.sha512': 'text/plain; charset=utf-8',
  '.asc': 'text/plain; charset=utf-8',
  '.sig': 'application/octet-stream',
  '.rpm': 'application/x-rpm',
  '.deb': 'application/vnd.debian.binary-package',
  '.iso': 'application/x-iso9660-image',
}

/** A Content-Type by file name, as a web server's mime table would give; binaries are octet streams. */
export function contentTypeOf(path: string): string {
  return TYPES[extname(path).toLowerCase()] ?? 'application/octet-stream'
}
