import {
  chmodSync,
  closeSync,
  fchmodSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  type Stats,
  writeSync,
} from 'node:fs'
import {chmod, lstat, mkdir, readdir, realpath, rm, rmdir} from 'node:fs/promises'
import {dirname, join, resolve, sep} from 'node:path'
import {setImmediate as nextTurn} from 'node:timers/promises'

import type {FilePutOptions, FileRef, FileSink} from '../../content/roles.js'
import {FailureError} from '../../errors.js'
import {hashFile} from '../../fetch/hashing-stream.js'
import {fsyncPath, parseTempName, syncFilesystem, tempNameBeside, tempStem} from '../../store/atomic.js'
import {alive} from '../../store/pid-lock.js'
import {WriteThread, WriteThreadError} from '../../store/write-thread.js'
import {wholeBody} from '../../tar/reader.js'

/** Renames made synchronously between two turns of the event loop (so the live view keeps moving). */
const RENAMES_PER_TURN = 256

/** Files up to this size are read whole and handed to the write thread; larger ones are written here as they come. */
const THREAD_FILE_BYTES = 256 * 1024

/** The write thread's ring: what it may fall behind by. */
const WRITE_RING_BYTES = 4 * 1024 * 1024

/** Small files written here before the write thread starts: for a few, its start costs more than it saves. */
const BEFORE_THREAD = 32

/** Files flushed at once when the filesystem cannot be flushed in one call. */
const FLUSH_CONCURRENCY = 4

/** Where a file goes and what is there: its final name, its mode, and a file of its size already at that name. */
interface Place {
  target: string
  mode: number
  existing: Stats | undefined
}

/** The folder of a relative path, '' for the root. */
function folderOf(path: string): string {
  const dir = dirname(path)
  return dir === '.' ? '' : dir
}

function errno(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code
}

function lstatSyncOrUndefined(p: string): Stats | undefined {
  try {
    return lstatSync(p)
  } catch (err) {
    if (errno(err) === 'ENOENT') return undefined
    throw err
  }
}

/** fsync each path, a few at once: what one flush of the filesystem does, where that is not to be had. */
async function flushEach(paths: string[]): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < paths.length) await fsyncPath(paths[next++])
  }
  await Promise.all(Array.from({length: Math.min(FLUSH_CONCURRENCY, paths.length)}, worker))
}

/** A staged file that could not be created or written, on this thread or the write thread. */
function cannotWrite(target: string, err: Error): FailureError {
  return new FailureError(`cannot write beside ${target}: ${err.message}`, {cause: err})
}

/** rmdir `dir` and its parents up to and including `top`, stopping at the first that is not empty. */
async function removeEmptyChain(dir: string, top: string): Promise<void> {
  for (let d = dir; d.startsWith(top); d = dirname(d)) {
    if (
      !(await rmdir(d).then(
        () => true,
        () => false,
      )) ||
      d === top
    )
      return
  }
}

/**
 * A web server's document root as a file sink. Writes never follow a link
 * out of the root: folders are created 0755 and a link or a non-folder on
 * the way is refused, a folder where a file goes too. Each file is written
 * beside its target under a temporary name, hashed as it comes (the body
 * checks itself; past the first few, a small file is checked whole, then
 * created and written by the `WriteThread` while the next ones are read),
 * and renamed only at `commit`, once the thread wrote everything and after
 * one flush of the whole filesystem, so a refused import leaves nothing
 * under a final name and a crash after commit no empty file under one;
 * `abort` stops the thread, then removes the staged files and the folders
 * this run created. An identical file is left alone (its mode corrected);
 * nothing the bundle does not name is touched, bar temporary files of a
 * killed earlier import.
 */
export class RootSink implements FileSink {
  readonly name: string
  /** The root, links resolved; set by open(). */
  private root = ''
  private madeRoot: string | undefined

  /** Whether open() created the root (it was missing: perhaps mistyped). */
  get createdRoot(): boolean {
    return this.madeRoot !== undefined
  }
  private readonly dirs = new Map<string, Promise<void>>()
  /** Folders made or checked (their promise in `dirs` fulfilled), the root's '' included: putWhole need not wait for them. */
  private readonly readyDirs = new Set<string>([''])
  /** Folders that got a new name in them; fsynced once at commit rather than per file. */
  private readonly touched = new Set<string>()
  /** Files complete and verified under their temporary name, waiting for commit(). */
  private readonly staged: {tmp: string; target: string}[] = []
  /** Their paths relative to the root: a folder the bundle also wants at one is refused before commit(), not by a failing rename. */
  private readonly stagedPaths = new Set<string>()
  /** Folders this import created, in creation order, so a refused import can take them back. */
  private readonly created: string[] = []
  /** The same, relative to the root: nothing can be at a target in one of them before commit(). */
  private readonly fresh = new Set<string>()
  /** The process's umask, read once: files need an fchmod only when it clears bits of their mode. */
  private readonly umask = process.umask()
  /** Paths of the bundle whose temporary names carry a shortened name (tempStem), as shortened, to recognise their stale temporary files too. */
  private readonly shortened = new Set<string>()
  /** Where small files are written once there are more than a few (see WriteThread). */
  private thread: WriteThread | undefined
  private smallFiles = 0

  constructor(
    /** As the user gave it; created when missing. */
    readonly given: string,
    /** Every relative path the bundle writes, to recognise our own stale temporary files. */
    private readonly bundlePaths: Set<string> = new Set(),
  ) {
    this.name = `--root ${given}`
    for (const p of bundlePaths) {
      const slash = p.lastIndexOf('/')
      const name = p.slice(slash + 1)
      const stem = tempStem(name)
      if (stem !== name) this.shortened.add(`${p.slice(0, slash + 1)}${stem}`)
    }
  }

  /** The root with links resolved, once open() ran. */
  get path(): string {
    return this.root
  }

  where(path: string): string {
    return path
  }

  /**
   * A regular file at `file.path` (no link on the way leads out of the root)
   * with its size and sha256; the whole file is read, as a file of the right
   * size with other bytes is not the file.
   */
  async has(file: FileRef): Promise<boolean> {
    const path = join(this.given, ...file.path.split('/'))
    const st = await lstat(path).catch(() => undefined)
    if (!st?.isFile() || st.size !== file.size) return false
    const real = await realpath(path).catch(() => undefined)
    const realRoot = await realpath(this.given).catch(() => this.given)
    if (!real || !real.startsWith(realRoot + sep)) return false
    return this.holdsAt(path, file)
  }

  private async holdsAt(path: string, file: FileRef): Promise<boolean> {
    const h = await hashFile(path)
    return h !== undefined && h.size === file.size && h.digest === `sha256:${file.sha256}`
  }

  /** Create the root when missing (0755, as its missing parents) and resolve it. */
  async open(): Promise<void> {
    this.madeRoot = await mkdir(this.given, {recursive: true, mode: 0o755})
    // 0755 whatever the umask, the root and every parent made with it: a web server reads them as another user.
    if (this.madeRoot && (0o755 & this.umask) !== 0) {
      const first = resolve(this.madeRoot)
      for (let d = resolve(this.given); ; d = dirname(d)) {
        await chmod(d, 0o755)
        if (d === first || dirname(d) === d) break
      }
    }
    this.root = await realpath(this.given)
    if (!(await lstat(this.root)).isDirectory()) throw new FailureError(`--root ${this.given} is not a folder`)
  }

  async put(file: FileRef, body: AsyncIterable<Buffer>, opts: FilePutOptions): Promise<void> {
    const rel = folderOf(file.path)
    await this.ensureDir(rel)
    // The hot path of an import of thousands of small files: every call is made synchronously
    // (each takes microseconds; a round trip through the thread pool costs more), and the
    // flush to disk waits for commit(), one for the whole import.
    const place = this.placeOf(file, opts.executable, rel)
    if (await this.kept(place, file, opts)) return
    const {tmp, fixMode} = this.claim(file, place)
    if (file.size <= THREAD_FILE_BYTES && (this.thread || ++this.smallFiles > BEFORE_THREAD)) {
      await this.putOnThread(tmp, place, body, fixMode, opts)
    } else {
      await this.putHere(tmp, place, body, fixMode, opts)
    }
    this.stagedAs(tmp, place.target, opts)
  }

  /**
   * put() for a small file whose bytes are checked already, without an
   * await when its folder is ready, nothing is at its place and the write
   * thread has room: then it is staged before this returns undefined.
   */
  putWhole(file: FileRef, bytes: Buffer, opts: FilePutOptions): Promise<void> | undefined {
    const rel = folderOf(file.path)
    const thread = this.thread
    if (!thread || file.size > THREAD_FILE_BYTES || !this.readyDirs.has(rel))
      return this.put(file, wholeBody(bytes), opts)
    const place = this.placeOf(file, opts.executable, rel)
    // A file of the same size there: compared with ours, which reads it.
    if (place.existing) return this.put(file, wholeBody(bytes), opts)
    const {tmp, fixMode} = this.claim(file, place)
    opts.onBytes(bytes.length)
    try {
      if (thread.tryWrite(tmp, [bytes], bytes.length, place.mode, fixMode)) {
        this.stagedAs(tmp, place.target, opts)
        return undefined
      }
    } catch (err) {
      throw this.threadFailure(err)
    }
    return thread.write(tmp, [bytes], bytes.length, place.mode, fixMode).then(
      () => this.stagedAs(tmp, place.target, opts),
      (err: unknown) => {
        throw this.threadFailure(err)
      },
    )
  }

  /** Where a file goes, with the checks made before anything is written: no folder at it, and what is there now when it has our size. */
  private placeOf(file: FileRef, executable: boolean, rel: string): Place {
    const target = join(this.root, file.path)
    // A folder this import made or checked at the file's own path (a hostile bundle lists both).
    if (this.dirs.has(file.path)) throw new FailureError(`${target} is a folder; the bundle has a file there`)
    const st = this.fresh.has(rel) ? undefined : lstatSyncOrUndefined(target)
    if (st?.isDirectory()) throw new FailureError(`${target} is a folder; the bundle has a file there`)
    return {target, mode: executable ? 0o755 : 0o644, existing: st?.isFile() && st.size === file.size ? st : undefined}
  }

  /** Whether the file there is ours already: then it is left alone (its mode corrected) and reported skipped. */
  private async kept(place: Place, file: FileRef, opts: FilePutOptions): Promise<boolean> {
    if (!place.existing || !(await this.holdsAt(place.target, file))) return false
    if ((place.existing.mode & 0o777) !== place.mode) await chmod(place.target, place.mode)
    opts.onBytes(file.size)
    opts.onStored('skipped')
    return true
  }

  /** The path claimed for a file about to be written, and its temporary name; claimed before any await, so that the other archive cannot make a folder here meanwhile. */
  private claim(file: FileRef, place: Place): {tmp: string; fixMode: boolean} {
    this.stagedPaths.add(file.path)
    // fixMode: the mode open() gives is not enough, as the umask takes bits from it.
    return {tmp: tempNameBeside(place.target), fixMode: (place.mode & this.umask) !== 0}
  }

  /** Verified and written (or queued on the thread): the file keeps its temporary name until commit(). */
  private stagedAs(tmp: string, target: string, opts: FilePutOptions): void {
    this.staged.push({tmp, target})
    this.touched.add(dirname(target))
    opts.onStored('written')
  }

  /** A small file read whole (the body checks itself as it ends), then handed to the thread; staged from then on, written or not. */
  private async putOnThread(
    tmp: string,
    place: Place,
    body: AsyncIterable<Buffer>,
    fixMode: boolean,
    opts: FilePutOptions,
  ): Promise<void> {
    const chunks: Buffer[] = []
    let length = 0
    for await (const chunk of body) {
      chunks.push(chunk)
      length += chunk.length
      opts.onBytes(chunk.length)
    }
    this.thread ??= new WriteThread(WRITE_RING_BYTES)
    try {
      await this.thread.write(tmp, chunks, length, place.mode, fixMode)
    } catch (err) {
      throw this.threadFailure(err)
    }
  }

  private async putHere(
    tmp: string,
    place: Place,
    body: AsyncIterable<Buffer>,
    fixMode: boolean,
    opts: FilePutOptions,
  ): Promise<void> {
    let fd: number
    try {
      fd = openSync(tmp, 'wx', place.mode)
    } catch (err) {
      throw cannotWrite(place.target, err as Error)
    }
    try {
      // The body hashes as it flows and throws before its end if the bytes are not the file's.
      for await (const chunk of body) {
        for (let off = 0; off < chunk.length;) off += writeSync(fd, chunk, off, chunk.length - off)
        opts.onBytes(chunk.length)
      }
      if (fixMode) fchmodSync(fd, place.mode)
    } catch (err) {
      closeSync(fd)
      rmSync(tmp, {force: true})
      throw err
    }
    closeSync(fd)
  }

  /** The write thread's failure, naming the file it was writing. */
  private threadFailure(err: unknown): unknown {
    if (!(err instanceof WriteThreadError)) return err
    const target = this.staged.find((s) => s.tmp === err.path)?.target ?? err.path
    return cannotWrite(target, err)
  }

  /**
   * Flush the staged files to disk, then give each its final name (a rename
   * each, replacing, never writing through, what is there), then flush the
   * folders that got the new names.
   */
  async commit(): Promise<void> {
    if (this.thread) {
      try {
        await this.thread.drain()
      } catch (err) {
        throw this.threadFailure(err)
      }
      await this.thread.stop()
      this.thread = undefined
    }
    if (!(await syncFilesystem(this.root))) await flushEach(this.staged.map((s) => s.tmp))
    let renamed = 0
    try {
      for (const {tmp, target} of this.staged) {
        renameSync(tmp, target)
        if (++renamed % RENAMES_PER_TURN === 0) await nextTurn()
      }
    } finally {
      // What got its name is the root's now; abort() removes only what is still staged.
      this.staged.splice(0, renamed)
    }
    if (!(await syncFilesystem(this.root))) for (const d of this.touched) await fsyncPath(d).catch(() => {})
  }

  /** Remove staged files and the folders this run created (the root too), when empty. */
  async abort(): Promise<void> {
    // The thread stopped first: nothing it was handed is created after its temporary name is removed.
    await this.thread?.stop()
    this.thread = undefined
    for (const {tmp} of this.staged.splice(0)) await rm(tmp, {force: true})
    for (const d of this.created.splice(0).reverse()) await rmdir(d).catch(() => {})
    if (this.madeRoot) await removeEmptyChain(resolve(this.given), resolve(this.madeRoot))
  }

  /** Make `rel` (a folder under the root) exist, refusing links and non-folders on the way. */
  private ensureDir(rel: string): Promise<void> {
    if (rel === '' || rel === '.') return Promise.resolve()
    let p = this.dirs.get(rel)
    if (!p) {
      p = this.makeDir(rel)
      this.dirs.set(rel, p)
      p.then(
        () => this.readyDirs.add(rel),
        () => {},
      )
      p.catch(() => this.dirs.delete(rel))
    }
    return p
  }

  private async makeDir(rel: string): Promise<void> {
    await this.ensureDir(dirname(rel))
    const abs = join(this.root, rel)
    if (this.stagedPaths.has(rel)) throw new FailureError(`${abs}: the bundle has a file there and files under it`)
    let st = lstatSyncOrUndefined(abs)
    if (!st) {
      // Synchronous, as the files are: an import of thousands of small files makes hundreds of folders.
      let made = false
      try {
        mkdirSync(abs, {mode: 0o755})
        made = true
      } catch (err) {
        if (errno(err) !== 'EEXIST') throw err
      }
      if (made) {
        this.created.push(abs)
        this.fresh.add(rel)
        this.touched.add(dirname(abs))
        // 0755 whatever the umask: a web server reads it as another user.
        if ((0o755 & this.umask) !== 0) chmodSync(abs, 0o755)
        return
      }
      st = lstatSync(abs)
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
      if (!t) continue
      const path = rel === '' ? t.target : `${rel}/${t.target}`
      if (!(this.bundlePaths.has(path) || this.shortened.has(path)) || alive(t.pid)) continue
      await rm(join(abs, name), {force: true})
    }
  }
}
