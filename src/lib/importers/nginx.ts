import {type Stats} from 'node:fs'
import {chmod, lstat, mkdir, open, readdir, realpath, rename, rm, rmdir} from 'node:fs/promises'
import {dirname, join, resolve} from 'node:path'

import type {BundleLock} from '../bundle/lock.js'
import {readBundleLock} from '../bundle/read-lock.js'
import {FailureError} from '../errors.js'
import {hashFile} from '../fetch/hashing-stream.js'
import {fsyncPath, parseTempName, tempNameBeside, writeAll} from '../store/atomic.js'
import {alive} from '../store/pid-lock.js'
import {formatBytes} from '../ui/format.js'
import {silentProgress, type Progress} from '../ui/index.js'
import {ARCHIVES, type ArchiveKind, type BundleEntry, bundleEntries, lockFilesOf, writtenByOtherArchive} from '../bundle/archive-entries.js'
import {type ImportedFile, type ImportTotals, inLockOrder, totals} from './result.js'
import {isDelta, refuseIncompleteTarget} from './delta-check.js'
import {filesHeld, rootHolds} from './holds.js'
import {verifyBeforeImport} from './verify-first.js'

export interface NginxImportOptions {
  /** The web server's document root; created when missing. */
  root: string
  progress?: Progress
}

export interface NginxImportResult extends ImportTotals {
  root: string
}

/** Files verified and being flushed to disk. Small: each flush holds one of the four libuv threads that gunzip and writes need too. */
const MAX_PENDING_COMMITS = 2

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code
}

async function lstatOrUndefined(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p)
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined
    throw err
  }
}

/**
 * Writes bundle files under a root without ever following a link out of it,
 * creating folders 0755, and committing each file by rename only after its
 * bytes were fsynced and matched bundle.json.
 */
class RootWriter {
  private readonly dirs = new Map<string, Promise<void>>()
  /** Folders that got a new name in them; fsynced once at the end rather than per file. */
  readonly touched = new Set<string>()
  private readonly commits = new Set<Promise<void>>()
  private commitError: unknown
  /** Files complete, verified and flushed under their temporary name, waiting for publish(). */
  private readonly staged: {tmp: string; target: string}[] = []
  /** Folders this import created, in creation order, so a refused import can take them back. */
  private readonly created: string[] = []

  constructor(
    readonly root: string,
    /** Every relative path the bundle writes, to recognise our own stale temporary files. */
    private readonly bundlePaths: Set<string>,
  ) {}

  /** Make `rel` (a folder under the root) exist, refusing links and non-folders on the way. */
  ensureDir(rel: string): Promise<void> {
    if (rel === '' || rel === '.') return Promise.resolve()
    let p = this.dirs.get(rel)
    if (!p) {
      p = this.makeDir(rel)
      this.dirs.set(rel, p)
      p.catch(() => this.dirs.delete(rel))
    }
    return p
  }

  private async makeDir(rel: string): Promise<void> {
    await this.ensureDir(dirname(rel))
    const abs = join(this.root, rel)
    let st = await lstatOrUndefined(abs)
    if (!st) {
      try {
        await mkdir(abs, {mode: 0o755})
        await chmod(abs, 0o755)
        this.created.push(abs)
        this.touched.add(dirname(abs))
        return
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err
        st = await lstat(abs)
      }
    }
    if (st.isSymbolicLink()) throw new FailureError(`${abs} is a symbolic link; refusing to write through it`)
    if (!st.isDirectory()) throw new FailureError(`${abs} exists and is not a folder`)
    await this.clearStaleTemps(rel)
  }

  /** Remove temporary files a killed import left beside the bundle's own files, and nothing else. */
  private async clearStaleTemps(rel: string): Promise<void> {
    const abs = join(this.root, rel)
    for (const name of await readdir(abs)) {
      const t = parseTempName(name)
      if (!t || !this.bundlePaths.has(rel === '' ? t.target : `${rel}/${t.target}`) || alive(t.pid)) continue
      await rm(join(abs, name), {force: true})
    }
  }

  /** Wait for every pending flush; throws the first that failed. */
  async settle(): Promise<void> {
    await Promise.all(this.commits)
    if (this.commitError !== undefined) throw this.commitError
  }

  /** Give every staged file its final name (a rename each, replacing, never writing through, what is there). */
  async publish(): Promise<void> {
    await this.settle()
    for (const {tmp, target} of this.staged.splice(0)) await rename(tmp, target)
    for (const d of this.touched) await fsyncPath(d).catch(() => {})
  }

  /** A refused import: remove staged files and the folders this run created, when empty. */
  async discard(): Promise<void> {
    await Promise.allSettled(this.commits)
    for (const {tmp} of this.staged.splice(0)) await rm(tmp, {force: true})
    for (const d of this.created.splice(0).reverse()) await rmdir(d).catch(() => {})
  }

  /** Stage one entry (or find it already there); it becomes visible at `publish()`. */
  async put(entry: BundleEntry, onBytes: (n: number) => void): Promise<ImportedFile['action']> {
    const dir = dirname(entry.path)
    await this.ensureDir(dir === '.' ? '' : dir)
    const target = join(this.root, entry.path)
    const mode = entry.executable ? 0o755 : 0o644
    const st = await lstatOrUndefined(target)
    if (st?.isDirectory()) throw new FailureError(`${target} is a folder; the bundle has a file there`)
    if (st?.isFile() && st.size === entry.file.size && (await hashFile(target))?.digest === `sha256:${entry.file.sha256}`) {
      if ((st.mode & 0o777) !== mode) await chmod(target, mode)
      onBytes(entry.file.size)
      return 'skipped'
    }
    const tmp = tempNameBeside(target)
    const fh = await open(tmp, 'wx', mode).catch((err: unknown) => {
      throw new FailureError(`cannot write beside ${target}: ${(err as Error).message}`, {cause: err})
    })
    try {
      // Hot path: the body hashes as it flows and throws before its end if the bytes are not bundle.json's.
      for await (const chunk of entry.body) {
        await writeAll(fh, chunk)
        onBytes(chunk.length)
      }
      await fh.chmod(mode)
    } catch (err) {
      await fh.close().catch(() => {})
      await rm(tmp, {force: true})
      throw err
    }
    // Verified against bundle.json. Flushing to disk is the slow part, so it runs while the next
    // entries are read; the file keeps its temporary name until publish().
    while (this.commits.size >= MAX_PENDING_COMMITS) await Promise.race(this.commits)
    const commit: Promise<void> = (async () => {
      try {
        await fh.datasync()
        await fh.close()
        this.staged.push({tmp, target})
      } catch (err) {
        await fh.close().catch(() => {})
        await rm(tmp, {force: true})
        this.commitError ??= err
      }
    })().finally(() => this.commits.delete(commit))
    this.commits.add(commit)
    this.touched.add(dirname(target))
    return 'written'
  }
}

async function importArchive(
  dir: string,
  lock: BundleLock,
  kind: ArchiveKind,
  writer: RootWriter,
  progress: Progress,
  signal: AbortSignal,
): Promise<ImportedFile[]> {
  const files = lockFilesOf(lock, kind)
  const name = ARCHIVES.find((a) => a.kind === kind)!.name
  const total = files.reduce((n, f) => n + f.size, 0)
  const task = progress.task(`${name}: ${files.length} file(s), ${formatBytes(total)}`, total)
  const out: ImportedFile[] = []
  const elsewhere = writtenByOtherArchive(lock, kind)
  try {
    // Read even when bundle.json lists nothing for it: an entry it does not list is refused, not ignored.
    for await (const entry of bundleEntries(dir, lock, kind)) {
      signal.throwIfAborted()
      if (elsewhere.has(entry.path)) {
        task.advance(entry.file.size)
        continue
      }
      const action = await writer.put(entry, (n) => task.advance(n))
      out.push({path: entry.path, size: entry.file.size, sha256: entry.file.sha256, action})
    }
    const written = out.filter((f) => f.action === 'written').length
    task.done(`${written} written, ${out.length - written} already there`)
    return out
  } catch (err) {
    // Stopped because the other archive failed: that one's line names the problem, not this one.
    task.fail(signal.aborted && err === signal.reason ? 'stopped: the other archive failed' : (err as Error).message)
    throw err
  }
}

/** rmdir `dir` and its parents up to and including `top`, stopping at the first that is not empty. */
async function removeEmptyChain(dir: string, top: string): Promise<void> {
  for (let d = dir; d.startsWith(top); d = dirname(d)) {
    if (!(await rmdir(d).then(() => true, () => false)) || d === top) return
  }
}

/**
 * `import nginx`: unpack both `.tar.gz` (top folder stripped) into the
 * root, verified. The bundle's verification of both archives (SHA256SUMS,
 * every entry; not offline-images.tar, which it does not import) runs at the same time as the unpacking,
 * on the other core, and decides: every file is first staged complete,
 * checked against bundle.json and flushed under a temporary name beside
 * its target; only when verification passed and every entry was staged
 * are they renamed to their final names. A refused bundle leaves nothing
 * behind (staged files and new folders are removed). An identical file is
 * left alone; nothing the bundle does not name is touched (bar temporary
 * files of a killed earlier import).
 */
export async function importNginx(dir: string, opts: NginxImportOptions): Promise<NginxImportResult> {
  const progress = opts.progress ?? silentProgress
  const lock = await readBundleLock(dir)
  if (isDelta(lock)) {
    // What the delta leaves out must be on disk already, checked before the root is even created.
    const left = lock.files.filter((f) => f.fromBase)
    const held = await filesHeld(left, (f) => rootHolds(opts.root, f))
    refuseIncompleteTarget(`--root ${opts.root}`, lock, left.filter((f) => !held.has(f)).map((f) => ({what: `${f.path} (sha256 ${f.sha256})`, size: f.size})))
  }
  const verified = verifyBeforeImport(dir, ['files', 'packages'], progress).then(
    () => undefined,
    (err: unknown) => err,
  )
  let writer: RootWriter | undefined
  let madeRoot: string | undefined
  try {
    madeRoot = await mkdir(opts.root, {recursive: true, mode: 0o755})
    const root = await realpath(opts.root)
    if (!(await lstat(root)).isDirectory()) throw new FailureError(`--root ${opts.root} is not a folder`)
    writer = new RootWriter(root, new Set(lock.files.map((f) => f.path)))
    const w = writer
    // Both archives at once: each is one sequential stream, and gunzip of each runs on its own thread.
    const abort = new AbortController()
    // The first failure stops the other archive, but both must have ended (the file it was
    // staging registered) before the cleanup below runs, or that file outlives the cleanup.
    const settled = await Promise.allSettled(
      ARCHIVES.map((a) =>
        importArchive(dir, lock, a.kind, w, progress, abort.signal).catch((err: unknown) => {
          abort.abort(err)
          throw err
        }),
      ),
    )
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason
    const results = settled.map((r) => (r as PromiseFulfilledResult<ImportedFile[]>).value)
    await w.settle()
    const refused = await verified
    if (refused) throw refused
    await w.publish()
    // Report in bundle.json order, whatever order the archives were read in.
    return {root, ...totals(inLockOrder(lock, results.flat()))}
  } catch (err) {
    await writer?.discard()
    if (madeRoot) await removeEmptyChain(resolve(opts.root), resolve(madeRoot))
    // Verification names every problem; prefer its report to the first entry that failed.
    const refused = await verified
    throw refused ?? err
  }
}
