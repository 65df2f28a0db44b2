import type {FilePutOptions, FileRef, FileSink} from '../../src/lib/content/roles.js'

/**
 * A FileSink held in memory, for tests of code that writes files (as
 * oras-go's content/memory is for its stores): a put is staged and becomes
 * visible at commit, as in a web root; abort drops what is staged. It keeps
 * the FileSink promises, which test/contracts/file-sink.test.ts checks.
 */
export class MemoryFileSink implements FileSink {
  readonly name = 'memory'
  /** What is visible, by path. */
  readonly files = new Map<string, {bytes: Buffer; sha256: string}>()
  private readonly staged = new Map<string, {bytes: Buffer; sha256: string}>()
  private readonly stored: Array<() => void> = []

  where(path: string): string {
    return path
  }

  async has(file: FileRef): Promise<boolean> {
    const there = this.files.get(file.path)
    return there !== undefined && there.bytes.length === file.size && there.sha256 === file.sha256
  }

  async put(file: FileRef, body: AsyncIterable<Buffer>, opts: FilePutOptions): Promise<void> {
    const chunks: Buffer[] = []
    // The body checks itself and throws before its end when the bytes are not file's.
    for await (const chunk of body) {
      chunks.push(chunk)
      opts.onBytes(chunk.length)
    }
    this.take(file, Buffer.concat(chunks), opts)
  }

  putWhole(file: FileRef, bytes: Buffer, opts: FilePutOptions): undefined {
    opts.onBytes(bytes.length)
    this.take(file, bytes, opts)
    return undefined
  }

  private take(file: FileRef, bytes: Buffer, opts: FilePutOptions): void {
    if (this.files.get(file.path)?.sha256 === file.sha256) {
      this.stored.push(() => opts.onStored('skipped'))
      return
    }
    this.staged.set(file.path, {bytes, sha256: file.sha256})
    this.stored.push(() => opts.onStored('written'))
  }

  async commit(): Promise<void> {
    for (const [path, file] of this.staged) this.files.set(path, file)
    this.staged.clear()
    for (const report of this.stored.splice(0)) report()
  }

  async abort(): Promise<void> {
    this.staged.clear()
    this.stored.length = 0
  }
}
