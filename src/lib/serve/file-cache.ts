import {createHash} from 'node:crypto'
import {type BigIntStats, constants} from 'node:fs'
import {lstat, mkdir, open, readFile, stat} from 'node:fs/promises'
import {homedir} from 'node:os'
import {extname, join} from 'node:path'
import type {Readable} from 'node:stream'

import {BUNDLE_FILES} from '../bundle/format/bundle-files.js'
import type {BundleError} from '../errors.js'
import {FailureError} from '../errors.js'
import {importNginx} from '../importers/nginx.js'
import {isRefusedBundle, refusedBundle, verifyBeforeImport} from '../importers/verify-first.js'
import type {Progress} from '../ui/index.js'
import type {BundleSet} from './bundle-set.js'

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
 *
 * Others must not be able to change what is served: the folder's name
 * follows from `bundle.json`, so anyone could make it in advance under a
 * shared root. A folder serve did not make (another owner), or one that, or
 * whose root, others may write, is refused. Each file's identity (device,
 * inode, size, mtime) is taken once it was verified, and every request opens
 * it without following a link and checks that identity: what is served is
 * what was verified, never a link or a file swapped in since.
 */

export interface CachedFile {
  /** Absolute path in the cache. */
  file: string
  size: number
  sha256: string
  contentType: string
  /** What was verified: a request serves this file and no other. */
  identity: FileIdentity
}

interface FileIdentity {
  dev: bigint
  ino: bigint
  size: bigint
  mtimeNs: bigint
}

const identityOf = (st: BigIntStats): FileIdentity => ({dev: st.dev, ino: st.ino, size: st.size, mtimeNs: st.mtimeNs})
const sameIdentity = (a: FileIdentity, b: FileIdentity): boolean =>
  a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs

/** The default cache root: `$XDG_CACHE_HOME/airlock/serve`, else `~/.cache/airlock/serve`. */
export function defaultCacheRoot(): string {
  const xdg = process.env.XDG_CACHE_HOME
  return join(xdg && xdg.startsWith('/') ? xdg : join(homedir(), '.cache'), 'airlock', 'serve')
}

/**
 * The cache folder of a bundle (and its bases, in order):
 * `<root>/<first 16 hex of the sha256 of their bundle.json>`, made (0700)
 * when missing; refused when another user owns it or others may write it or
 * its root.
 */
export async function cacheFolder(root: string, dirs: string[]): Promise<string> {
  const h = createHash('sha256')
  for (const d of dirs) h.update(await readFile(join(d, BUNDLE_FILES.lock)))
  const folder = join(root, h.digest('hex').slice(0, 16))
  const uid = process.geteuid?.()
  await mkdir(root, {recursive: true, mode: 0o700})
  // The root may be a link the user made (~/.cache elsewhere): it is followed; the folder is not.
  const rootStat = await stat(root)
  if (!rootStat.isDirectory()) throw new FailureError(`cache root ${root} is not a folder`, {suggestions: CACHE_HINT})
  checkOwned(root, rootStat, uid, true)
  await mkdir(folder, {mode: 0o700}).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err
  })
  const st = await lstat(folder)
  if (!st.isDirectory())
    throw new FailureError(`cache folder ${folder} is not a folder (a link or a file is there)`, {
      suggestions: CACHE_HINT,
    })
  checkOwned(folder, st, uid, false)
  return folder
}

const CACHE_HINT = ['give serve a cache folder only you can write with --cache-dir DIR (it makes DIR when missing)']

/** Ours (or, for the root, root's), and writable by no one else; a root others may write is fine only with the sticky bit, as /tmp has. */
function checkOwned(path: string, st: {uid: number; mode: number}, uid: number | undefined, isRoot: boolean): void {
  if (uid === undefined) return
  if (st.uid !== uid && !(isRoot && st.uid === 0)) {
    throw new FailureError(
      `${path} belongs to another user (uid ${st.uid}): serve uses no cache folder it did not make`,
      {suggestions: CACHE_HINT},
    )
  }
  const sticky = (st.mode & 0o1000) !== 0
  if ((st.mode & 0o022) !== 0 && !(isRoot && sticky)) {
    throw new FailureError(
      `${path} may be written by other users (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')}): they could change what serve hands out`,
      {
        suggestions: [`chmod go-w ${path}`, ...CACHE_HINT],
      },
    )
  }
}

/**
 * Unpack (or find) the files of the set (bases first, the bundle last) in
 * `folder`, verifying each whole bundle (its images too); returns every
 * served path, looked up in the set's order. A bundle that
 * fails verification throws its BundleError and nothing new becomes visible.
 */
export async function prepareFiles(
  set: BundleSet,
  folder: string,
  progress?: Progress,
): Promise<Map<string, CachedFile>> {
  for (const bundle of set.unpack) {
    const {dir} = bundle
    // import nginx checks the two archives it unpacks; the images, served from the tar as they are, are checked beside it.
    const [unpacked, images] = await Promise.allSettled([
      importNginx(bundle, {root: folder, progress}),
      verifyBeforeImport(bundle, ['images'], progress, 'served'),
    ])
    const failed = [images, unpacked]
      .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
      .map((r) => r.reason as unknown)
    // A refused bundle is refused in serve's words, with every problem verify lists (each refusal ran the full check).
    const refused = failed.find(isRefusedBundle) as BundleError | undefined
    if (refused) throw refusedBundle(dir, refused.details, 'served')
    if (failed.length > 0) throw failed[0]
  }
  const table = new Map<string, CachedFile>()
  for (const {lock} of set.lookup) {
    for (const f of lock.files) {
      if (table.has(f.path)) continue
      const file = join(folder, ...f.path.split('/'))
      const st = await lstat(file, {bigint: true})
      if (!st.isFile() || st.size !== BigInt(f.size))
        throw new FailureError(
          `${file} is not the verified file of ${f.size} bytes it was a moment ago: was the cache changed while serve started?`,
        )
      table.set(f.path, {
        file,
        size: f.size,
        sha256: f.sha256,
        contentType: contentTypeOf(f.path),
        identity: identityOf(st),
      })
    }
  }
  return table
}

/** Reads go in large chunks: the hot path of a download. */
const READ_CHUNK = 256 << 10

/** The verified file, opened without following a link and checked to be the very file verified. */
export async function openCached(f: CachedFile, start: number, end: number): Promise<Readable> {
  let fh
  try {
    fh = await open(f.file, constants.O_RDONLY | constants.O_NOFOLLOW)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    throw new FailureError(
      code === 'ELOOP'
        ? `${f.file} is a link now, not the file verified: not served`
        : `${f.file}: ${(err as Error).message}`,
      {cause: err},
    )
  }
  try {
    const st = await fh.stat({bigint: true})
    if (!st.isFile() || !sameIdentity(identityOf(st), f.identity))
      throw new FailureError(
        `${f.file} is not the file verified (replaced or changed since): not served; restart serve to verify the cache again`,
      )
  } catch (err) {
    await fh.close()
    throw err
  }
  return fh.createReadStream({start, end, highWaterMark: READ_CHUNK})
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
