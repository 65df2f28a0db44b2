import type {Stats} from 'node:fs'
import {readFile, stat} from 'node:fs/promises'

import {writeFileAtomic} from '../store/atomic.js'

interface Entry {
  size: number
  mtimeMs: number
  ctimeMs: number
  ino: number
  digest: string
}

/**
 * Digests of files already in the store, keyed by path and trusted only
 * while size, mtime, ctime and inode are all unchanged: any write, rename
 * or chmod changes ctime, so an edited file is hashed again. Like git's
 * index, a file changed within a moment of being recorded could keep its
 * times, so entries that young are not recorded at all.
 */
export class HashCache {
  private entries = new Map<string, Entry>()
  private dirty = false

  constructor(private readonly file: string) {}

  async load(): Promise<void> {
    try {
      const j = JSON.parse(await readFile(this.file, 'utf8')) as {version?: number; entries?: Record<string, Entry>}
      if (j.version === 1 && j.entries) this.entries = new Map(Object.entries(j.entries))
    } catch {
      // No cache or a damaged one: every file is hashed, which is only slower.
    }
  }

  /** The recorded digest when `st` is the same file state as recorded. */
  lookup(path: string, st: Stats): string | undefined {
    const e = this.entries.get(path)
    if (!e) return undefined
    if (e.size === st.size && e.mtimeMs === st.mtimeMs && e.ctimeMs === st.ctimeMs && e.ino === st.ino) return e.digest
    return undefined
  }

  remember(path: string, st: Stats, digest: string, now = Date.now()): void {
    if (now - Math.max(st.mtimeMs, st.ctimeMs) < 2000) {
      this.forget(path)
      return
    }
    this.entries.set(path, {size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, ino: st.ino, digest})
    this.dirty = true
  }

  forget(path: string): void {
    if (this.entries.delete(path)) this.dirty = true
  }

  async save(): Promise<void> {
    if (!this.dirty) return
    await writeFileAtomic(this.file, JSON.stringify({version: 1, entries: Object.fromEntries(this.entries)}))
    this.dirty = false
  }
}

/** stat, or undefined when the path is missing or not a regular file. */
export async function statFile(path: string): Promise<Stats | undefined> {
  try {
    const st = await stat(path)
    return st.isFile() ? st : undefined
  } catch {
    return undefined
  }
}
