import {Worker} from 'node:worker_threads'

import {retuneHeap} from '../heap.js'

/**
 * The thread's whole program (builtins only, so it runs the same in the
 * standalone executable): each file of a batch created under its name (never
 * replacing one), its bytes written from the shared ring, closed; then the
 * ring space of the batch given back. The first failure stops the thread's
 * work for good and is reported with the file's name.
 */
const PROGRAM = `
const {closeSync, fchmodSync, openSync, writeSync} = require('node:fs')
const {parentPort, workerData} = require('node:worker_threads')
const ring = new Uint8Array(workerData.ring)
let failed = false
parentPort.on('message', (batch) => {
  if (failed) return
  let released = 0
  for (const f of batch) {
    try {
      const fd = openSync(f.path, 'wx', f.mode)
      try {
        for (let off = f.off, end = f.off + f.length; off < end; ) off += writeSync(fd, ring, off, end - off)
        if (f.chmod) fchmodSync(fd, f.mode)
      } finally {
        closeSync(fd)
      }
    } catch (err) {
      failed = true
      parentPort.postMessage({failed: f.path, message: err.message, code: err.code})
      return
    }
    released += f.span
  }
  parentPort.postMessage({done: batch.length, released})
})
`

/** One file for the thread: its bytes at `off` in the ring; `span` is what it holds of the ring (its bytes and any gap left before them at the ring's end). */
interface QueuedFile {
  path: string
  mode: number
  /** fchmod after the write: the umask took bits from the mode open() was given. */
  chmod: boolean
  off: number
  length: number
  span: number
}

/** A file the thread could not write: its path, and the system's message. */
export class WriteThreadError extends Error {
  constructor(
    readonly path: string,
    message: string,
    readonly code: string | undefined,
  ) {
    super(message)
  }
}

/** Files sent to the thread in one message, at most. */
const BATCH_FILES = 64

/**
 * Small files written on a thread of their own. On a filesystem where
 * creating a file costs more than the work around it (a journal updated per
 * name), the main thread goes on reading, checking and hashing the next
 * entries while this one creates the last ones. Their bytes pass through one
 * shared ring of `ringBytes` allocated once, so memory stays flat however
 * many files come; `write` waits only while the ring is full. `drain` waits
 * until every queued file is written and closed, and throws the first
 * failure; `stop` ends the thread, after which nothing more is created, so
 * that what was queued can be removed.
 */
export class WriteThread {
  private readonly ring: Buffer
  private readonly worker: Worker
  private batch: QueuedFile[] = []
  private flushScheduled = false
  /** Next free byte of the ring (below ringBytes), and the bytes held by files not yet written. */
  private head = 0
  private used = 0
  /** Files queued, and those the thread confirmed. */
  private queued = 0
  private written = 0
  private failure: Error | undefined
  private waiters: (() => void)[] = []
  private stopped = false
  /** Settles once the stopped thread has ended. */
  private ended: Promise<void> = Promise.resolve()

  constructor(readonly ringBytes: number) {
    const shared = new SharedArrayBuffer(ringBytes)
    this.ring = Buffer.from(shared)
    this.worker = new Worker(PROGRAM, {eval: true, workerData: {ring: shared}})
    // A worker's start sets V8's flags back to the command line's, for the whole process.
    this.worker.once('online', retuneHeap)
    // Held open only while it has work, so an idle thread never keeps the process alive.
    this.worker.unref()
    this.worker.on(
      'message',
      (m: {done: number; released: number} | {failed: string; message: string; code?: string}) => {
        // Reports still on their way when stop() was called: the thread is ending, and an unref
        // here would let the process exit before it has (exit 13, with stop() never settled).
        if (this.stopped) return
        if ('failed' in m) this.fail(new WriteThreadError(m.failed, m.message, m.code))
        else {
          this.written += m.done
          this.used -= m.released
          if (this.written === this.queued) this.worker.unref()
        }
        this.wake()
      },
    )
    this.worker.on('error', (err) => this.fail(err))
    this.worker.on('exit', () => {
      if (!this.stopped) this.fail(new Error('the thread writing files ended unexpectedly'))
    })
  }

  /**
   * Queue a new file at `path` (created with `mode`, never replacing one)
   * holding `chunks`, `length` bytes in all: they are copied into the ring
   * once it has room. At most half the ring, so that a file always fits once
   * the ones before it are written, wherever the last one ended. Throws the
   * thread's failure, once there is one.
   */
  async write(path: string, chunks: readonly Buffer[], length: number, mode: number, chmod: boolean): Promise<void> {
    while (!this.tryWrite(path, chunks, length, mode, chmod)) await this.next()
  }

  /** As write, when the ring has room now; false (nothing queued) when it has not. */
  tryWrite(path: string, chunks: readonly Buffer[], length: number, mode: number, chmod: boolean): boolean {
    if (length > this.ringBytes / 2)
      throw new RangeError(`${length} bytes are more than half the write thread's ring of ${this.ringBytes}`)
    if (this.failure) throw this.failure
    // A file is never split across the ring's end: it starts again at 0, and the gap left at the end is held until the file is written.
    const gap = this.head + length > this.ringBytes ? this.ringBytes - this.head : 0
    if (this.used + gap + length > this.ringBytes) return false
    if (gap > 0) this.head = 0
    const off = this.head
    let at = off
    for (const c of chunks) at += c.copy(this.ring, at)
    // Below ringBytes always, so a file that would pass the end leaves a gap of at least one byte.
    this.head = (this.head + length) % this.ringBytes
    this.used += gap + length
    this.batch.push({path, mode, chmod, off, length, span: gap + length})
    this.queued++
    if (this.batch.length >= BATCH_FILES) this.flush()
    else if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => this.flush())
    }
    return true
  }

  /** Resolves once every queued file is written and closed; rejects with the first failure. */
  async drain(): Promise<void> {
    this.flush()
    while (this.written < this.queued && !this.failure) await this.next()
    if (this.failure) throw this.failure
  }

  /**
   * End the thread; once this resolves, it creates nothing more. The thread
   * stays referenced until it has ended, so the process waits for it; a
   * write waiting for room, or a drain, throws instead of waiting forever.
   */
  stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true
      this.batch = []
      this.failure ??= new Error('the thread writing files was stopped')
      this.wake()
      this.worker.ref()
      this.ended = this.worker.terminate().then(() => undefined)
    }
    return this.ended
  }

  private flush(): void {
    this.flushScheduled = false
    if (this.batch.length === 0 || this.failure) return
    const batch = this.batch
    this.batch = []
    this.worker.ref()
    this.worker.postMessage(batch)
  }

  private fail(err: Error): void {
    this.failure ??= err
    // Once stopping, the thread stays referenced until it has ended (see stop()).
    if (!this.stopped) this.worker.unref()
    this.wake()
  }

  private next(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve))
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }
}
