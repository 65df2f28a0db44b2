import {mkdir, rename} from 'node:fs/promises'
import {dirname} from 'node:path'

import {fsyncPath, syncFilesystem} from './atomic.js'

/** Files or folders fsynced at once where the filesystem cannot be flushed in one call. */
const FLUSH_CONCURRENCY = 4

/**
 * Verified files waiting for their final names, made durable by one flush
 * of the filesystem for all of them instead of an fsync each (a pull of 400
 * small images made two fsyncs per blob and manifest: one for its bytes, one
 * for its folder). `stage` takes a file complete and verified under its
 * temporary name; `commit` flushes the filesystem (syncfs(2); an fsync of
 * each file where that is not to be had), only then renames each file to its
 * final name, and flushes again, so the names are durable before anything
 * that points at them (index.json, records.json) is written. So no file is
 * ever under its final name before its bytes are on disk, and a run killed
 * before `commit` leaves the files under their temporary names, where the
 * next run finds them whole (a partial download that already hashes to its
 * digest costs no request).
 */
export class StagedFiles {
  /** Final name -> temporary name. */
  private readonly staged = new Map<string, string>()
  private last: Promise<void> = Promise.resolve()

  constructor(
    /** A path on the filesystem that holds the files (the store's root). */
    private readonly root: string,
  ) {}

  stage(tmp: string, dest: string): void {
    this.staged.set(dest, tmp)
  }

  has(dest: string): boolean {
    return this.staged.has(dest)
  }

  /** Where the content meant for `dest` is now: its temporary name while staged, else `dest`. */
  pathOf(dest: string): string {
    return this.staged.get(dest) ?? dest
  }

  /** Flush, rename, flush: every file staged so far under its final name, durably. One commit at a time. */
  commit(): Promise<void> {
    const next = this.last.then(() => this.commitNow())
    this.last = next.catch(() => {})
    return next
  }

  private async commitNow(): Promise<void> {
    const batch = [...this.staged]
    if (batch.length === 0) return
    if (!(await syncFilesystem(this.root))) await fsyncEach(batch.map(([, tmp]) => tmp))
    const dirs = new Set<string>()
    for (const [dest, tmp] of batch) {
      const dir = dirname(dest)
      if (!dirs.has(dir)) await mkdir(dir, {recursive: true})
      dirs.add(dir)
      await rename(tmp, dest)
      // Staged again meanwhile (by another temporary name): that one waits for the next commit.
      if (this.staged.get(dest) === tmp) this.staged.delete(dest)
    }
    if (!(await syncFilesystem(this.root))) await fsyncEach([...dirs]).catch(() => {})
  }
}

/** fsync each path, a few at once. */
async function fsyncEach(paths: string[]): Promise<void> {
  let next = 0
  const worker = async () => {
    while (next < paths.length) await fsyncPath(paths[next++])
  }
  await Promise.all(Array.from({length: Math.min(FLUSH_CONCURRENCY, paths.length)}, worker))
}
