import {createHash, type Hash} from 'node:crypto'
import {type FileHandle, open, readdir, rename, rm} from 'node:fs/promises'
import {join} from 'node:path'
import {Writable} from 'node:stream'

import {fsyncPath, tempNameBeside, writeAll} from '../../store/atomic.js'
import {gathered} from '../../tar/writer.js'
import {partName} from '../format/parts.js'

export interface WrittenFile {
  /** File name inside the bundle folder (a part's name when split). */
  name: string
  size: number
  sha256: string
}

/** Size of the buffer small writes are gathered in. */
const GATHER = 1 << 20

/**
 * Where an archive's bytes go: a temporary file beside its final name (or
 * one per part with `split`), hashed and counted as they are written.
 * Nothing gets a final name before `commit()`, so an interrupted bundle
 * leaves no half-written archive that looks finished.
 */
export class BundleOutput extends Writable {
  readonly parts: {name: string; tmp: string; size: number; hash: Hash}[] = []
  bytes = 0
  private fh?: FileHandle

  constructor(
    readonly dir: string,
    readonly name: string,
    private readonly split?: number,
    private readonly onBytes?: (n: number) => void,
    /** Permissions of the file, whatever the umask (the executables carried as tools are 0755). */
    private readonly mode?: number,
  ) {
    super({highWaterMark: 1 << 20})
  }

  private async nextPart(): Promise<void> {
    await this.closePart()
    const name = this.split === undefined ? this.name : partName(this.name, this.parts.length)
    const tmp = tempNameBeside(join(this.dir, name))
    this.fh = await open(tmp, 'wx', this.mode ?? 0o644)
    if (this.mode !== undefined) await this.fh.chmod(this.mode)
    this.parts.push({name, tmp, size: 0, hash: createHash('sha256')})
  }

  private async closePart(): Promise<void> {
    if (!this.fh) return
    const fh = this.fh
    this.fh = undefined
    await fh.sync()
    await fh.close()
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.writeChunk(chunk).then(() => cb(), cb)
  }

  /**
   * Many small chunks (a tar of thousands of small blobs is mostly headers,
   * small bodies and padding) go out as one write, gathered in one buffer
   * kept for the whole file: a new buffer per write would be garbage that
   * piles up outside V8's heap until a collection notices it.
   */
  override _writev(chunks: {chunk: Buffer}[], cb: (err?: Error | null) => void): void {
    this.writeGathered(chunks.map((c) => c.chunk)).then(() => cb(), cb)
  }

  private scratch?: Buffer

  private async writeGathered(chunks: Buffer[]): Promise<void> {
    // One buffer for every block: each is written before the next is gathered.
    for await (const block of gathered(chunks, GATHER, () => (this.scratch ??= Buffer.allocUnsafeSlow(GATHER))))
      await this.writeChunk(block)
  }

  private async writeChunk(chunk: Buffer): Promise<void> {
    let data = chunk
    while (data.length > 0) {
      if (!this.fh) await this.nextPart()
      const part = this.parts.at(-1)!
      const room = this.split === undefined ? data.length : this.split - part.size
      if (room === 0) {
        await this.nextPart()
        continue
      }
      const piece = room >= data.length ? data : data.subarray(0, room)
      await writeAll(this.fh!, piece)
      part.hash.update(piece)
      part.size += piece.length
      this.bytes += piece.length
      this.onBytes?.(piece.length)
      data = data.subarray(piece.length)
    }
  }

  override _final(cb: (err?: Error | null) => void): void {
    // An empty archive still exists as a file (and as part 000 when split).
    const first = this.parts.length === 0 ? this.nextPart() : Promise.resolve()
    first.then(() => this.closePart()).then(() => cb(), cb)
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const fh = this.fh
    this.fh = undefined
    ;(fh ? fh.close() : Promise.resolve()).then(
      () => cb(err),
      () => cb(err),
    )
  }

  /** Sizes and sha256 of what was written, one entry per part. */
  get written(): WrittenFile[] {
    return this.parts.map((p) => ({name: p.name, size: p.size, sha256: p.hash.copy().digest('hex')}))
  }

  /** Give the parts their final names; any stale file or part of this archive from an earlier bundle goes first. */
  async commit(): Promise<void> {
    await removeArchive(this.dir, this.name, new Set(this.parts.map((p) => p.name)))
    for (const p of this.parts) await rename(p.tmp, join(this.dir, p.name))
    await fsyncPath(this.dir).catch(() => {})
  }

  async abort(): Promise<void> {
    this.destroy()
    for (const p of this.parts) await rm(p.tmp, {force: true})
  }
}

/** Remove `name` and its numbered parts from `dir`, except those in `keep` (which are about to be replaced by rename). */
export async function removeArchive(dir: string, name: string, keep = new Set<string>()): Promise<void> {
  const re = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\.\\d{3,})?$`)
  for (const e of await readdir(dir)) {
    if (re.test(e) && !keep.has(e)) await rm(join(dir, e), {force: true})
  }
}
