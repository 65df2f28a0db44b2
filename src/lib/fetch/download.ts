import {createHash, type Hash} from 'node:crypto'
import {createReadStream, createWriteStream, mkdirSync} from 'node:fs'
import {rm, truncate} from 'node:fs/promises'
import {dirname} from 'node:path'
import type {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import type {Opener} from '../content/opener.js'
import {IntegrityError, isAirlockError, NetworkError} from '../errors.js'
import {streamingHeap} from '../heap.js'
import {commitFile} from '../store/atomic.js'
import {sizeOnDisk, SMALL_FILE, writeSmall} from '../store/small-files.js'
import {HashingStream} from './hashing-stream.js'
import {defaultLowSpeed, type LowSpeed, lowSpeedWatch} from './low-speed.js'
import {type RetryPolicy, withRetry} from './retry.js'

export interface DownloadRequest {
  open: Opener
  /** `sha256:<hex>` the content must hash to. */
  digest: string
  /** Exact size when known (image blobs); files learn theirs from the server. */
  size?: number
  /** Final path; written only after size and digest matched. */
  dest: string
  /** Partial download path; kept on a broken transfer so the next attempt resumes. */
  partial: string
  /** Names the content in errors: `blob sha256:... of docker.io/library/nginx:1.25`. */
  label: string
  onBytes?: (n: number) => void
  /**
   * A further check of the complete file, after size and digest matched and
   * before it gets its final name (an rpm's OpenPGP header signature). It
   * throws to refuse the file; an IntegrityError removes the partial file.
   */
  check?: (partial: string) => Promise<void>
  /**
   * Gives the verified partial file its final name; default `commitFile`
   * (fsync, rename, fsync of the folder). A pull's layout stages it instead
   * (StagedFiles: renamed after one flush for many).
   */
  commit?: (partial: string, dest: string) => Promise<void>
  policy?: RetryPolicy
  /** Abandon (and retry) a transfer slower than this; default defaultLowSpeed. */
  lowSpeed?: LowSpeed
  signal?: AbortSignal
}

export interface DownloadResult {
  /** Bytes received from the network in this call, retries included. */
  bytesFetched: number
  /** Bytes of a partial file left by an earlier run that were kept, not fetched again. */
  bytesResumed: number
  size: number
}

/** The bytes a partial file holds (0 when there is none). */
function sizeOf(path: string): number {
  return sizeOnDisk(path) ?? 0
}

/**
 * The hash of the partial file's first `bytes` bytes, carried from one
 * attempt to the next so a resume need not read them back from disk.
 */
interface RunningHash {
  hash: Hash
  bytes: number
}

/**
 * The one download routine, for image blobs and files alike: stream to a
 * partial file while hashing, resume it with Range after a break (hashing
 * what is already there first, unless this call hashed it as it came), compare
 * size and digest at EOF, and only then fsync and rename to the final name. A
 * mismatch deletes the partial file and starts over once before failing.
 */
export async function downloadVerified(req: DownloadRequest): Promise<DownloadResult> {
  // Synchronous: the folder is there for all but the first download, and this answers without a thread-pool round trip.
  mkdirSync(dirname(req.partial), {recursive: true})
  const initial = sizeOf(req.partial)
  let fetched = 0
  const running: RunningHash = {hash: createHash('sha256'), bytes: 0}
  // What a final error names: the server last spoken to and how many attempts it got.
  const seen = {url: undefined as string | undefined, attempts: 0}
  for (let round = 1; ; round++) {
    try {
      const r = await withRetry(
        () => {
          seen.attempts++
          return attempt(req, running, (n) => (fetched += n), seen)
        },
        {policy: req.policy, signal: req.signal},
      )
      if (req.check) await req.check(req.partial)
      await (req.commit ?? commitFile)(req.partial, req.dest)
      // What an earlier run left and this one did not have to fetch again.
      const resumed = Math.min(initial, Math.max(0, r.size - fetched))
      return {bytesFetched: fetched, bytesResumed: resumed, size: r.size}
    } catch (err) {
      if (err instanceof IntegrityError) {
        await rm(req.partial, {force: true})
        running.hash = createHash('sha256')
        running.bytes = 0
        if (round < 2) continue
      }
      throw named(err, req, seen, running.bytes)
    }
  }
}

/**
 * A transfer error as a user can act on it: what was downloaded, from which
 * host, and what was tried. Errors that already say so (ours) pass through;
 * a bare socket or got error ("read ECONNRESET", "The server aborted pending
 * request") gets the subject, the host and the attempts around it.
 */
function named(err: unknown, req: DownloadRequest, seen: {url?: string; attempts: number}, have: number): unknown {
  if (req.signal?.aborted) return err
  const host = hostOf(seen.url)
  const tried = `${seen.attempts} attempt${seen.attempts === 1 ? '' : 's'}${seen.attempts > 1 && have > 0 ? ', each resuming with Range where the last stopped' : ''}`
  if (err instanceof NetworkError && !err.message.includes(req.label)) {
    const own =
      req.label.includes(err.host) && err.message.startsWith(`${err.host}: `)
        ? err.message.slice(err.host.length + 2)
        : err.message
    return new NetworkError(`${req.label}: ${own}; gave up after ${tried}`, {
      host: err.host,
      status: err.status,
      cause: err,
    })
  }
  if (isAirlockError(err)) return err
  const e = err as {code?: string; message?: string}
  const code = e.code && !String(e.message).includes(e.code) ? ` (${e.code})` : ''
  return new NetworkError(
    `${req.label} from ${host}: ${e.message ?? String(err)}${code}; gave up after ${tried}${have > 0 ? ` (${have} bytes kept for the next run)` : ''}`,
    {host, cause: err},
  )
}

/**
 * The hash of the partial file's first `have` bytes: the running one when it
 * covers exactly those bytes, else read back from disk (an earlier run's
 * file, or a break that hashed bytes the file never received).
 */
async function hashOfPartial(path: string, have: number, running: RunningHash): Promise<Hash> {
  if (running.bytes === have) return running.hash.copy()
  const hash = createHash('sha256')
  if (have > 0) for await (const chunk of createReadStream(path, {end: have - 1})) hash.update(chunk as Buffer)
  return hash
}

async function attempt(
  req: DownloadRequest,
  running: RunningHash,
  count: (n: number) => void,
  seen: {url?: string},
): Promise<{size: number}> {
  let have = sizeOf(req.partial)
  if (req.size !== undefined && have > req.size) {
    // A tail past the content's size is not the content's: cut it, and check what is left like any kept bytes.
    have = await cut(req.partial, req.size, running)
  }
  let hash = await hashOfPartial(req.partial, have, running)
  // Kept bytes that hash to the digest are the content: an earlier run ended between the last
  // byte and the rename (killed, or told a larger Content-Length than its server sent). No request.
  const whole = have > 0 && (req.size === undefined || have === req.size) && digestOf(hash) === req.digest
  // A blob of its full size that does not hash right needs no request either: the check below refuses it.
  const opened = whole || (req.size !== undefined && have === req.size) ? undefined : await req.open(have)
  if (opened?.pastEnd) {
    // 416: the server has nothing from `have` on, so what was kept is all the content there is (or
    // more: a tail past the size the server names is cut). It is checked, not fetched again; when
    // it does not hash right, the check's IntegrityError starts the file over.
    opened.stream.destroy()
    seen.url = opened.url
    if (opened.total !== undefined && opened.total < have) {
      have = await cut(req.partial, opened.total, running)
      hash = await hashOfPartial(req.partial, have, running)
    }
    req.onBytes?.(0)
    running.hash = hash
    running.bytes = have
    const actual = digestOf(hash)
    if (actual !== req.digest || (opened.total !== undefined && opened.total !== have)) {
      throw new IntegrityError(
        req.label,
        req.digest,
        opened.total !== undefined && opened.total !== have ? `${have} bytes kept of ${opened.total}` : actual,
      )
    }
    return {size: have}
  }
  if (opened && opened.start === 0 && have > 0) {
    // The server ignored the Range and sends from the first byte: the kept bytes are of no use
    // for this transfer (skipping as many of the new ones would cost the same network bytes).
    await truncate(req.partial, 0)
    hash = createHash('sha256')
    have = 0
  }
  let size: number | undefined
  if (opened) {
    seen.url = opened.url
    const expectedTotal = req.size ?? opened.total
    const what = `${req.label} from ${hostOf(opened.url)}`
    // A fresh small body (a config, a manifest, a small layer or file) is read whole: through a pipeline and a
    // write stream (open, writes, close on the thread pool) each of thousands of tiny blobs cost more than its bytes.
    if (have === 0 && expectedTotal !== undefined && expectedTotal <= SMALL_FILE) {
      size = await smallBody(req, {stream: opened.stream, max: expectedTotal, what, hash, running}, (n) => {
        count(n)
        req.onBytes?.(n)
      })
    } else {
      const watch = lowSpeedWatch(req.lowSpeed ?? defaultLowSpeed, what, (err) => hasher.destroy(err))
      const hasher: HashingStream = new HashingStream(
        expectedTotal === undefined ? undefined : expectedTotal - have,
        req.label,
        hash,
        (n) => {
          watch.add(n)
          count(n)
          req.onBytes?.(n)
        },
      )
      // A large body: the collector's limits for streams while it flows (see streamingHeap).
      const streamed = streamingHeap(expectedTotal === undefined ? undefined : expectedTotal - have)
      try {
        await pipeline(opened.stream, hasher, createWriteStream(req.partial, {flags: 'a'}), {signal: req.signal})
      } finally {
        watch.stop()
        streamed()
        // Valid for the next attempt only if the file then holds every byte hashed here.
        running.hash = hash
        running.bytes = have + hasher.bytes
      }
    }
  } else {
    req.onBytes?.(0)
    running.hash = hash
    running.bytes = have
  }
  size ??= sizeOf(req.partial)
  // A copy: a short body leaves the running hash to carry on from.
  const actual = digestOf(hash)
  check(req, size, actual, opened?.total)
  return {size}
}

/**
 * A small body read whole (up to SMALL_FILE): hashed as it comes,
 * refused once it passes `max` bytes, written to the partial file in one
 * call, also when the transfer breaks (the next attempt resumes from what
 * came, as a streamed body's does). The low-speed clock and the abort
 * signal apply as to a stream. Returns the bytes written.
 */
async function smallBody(
  req: DownloadRequest,
  body: {stream: Readable; max: number; what: string; hash: Hash; running: RunningHash},
  onBytes: (n: number) => void,
): Promise<number> {
  const {stream, max, what, hash, running} = body
  const chunks: Buffer[] = []
  let bytes = 0
  // Why the transfer was stopped from here: thrown as it is (got would wrap an error given to destroy).
  let stopped: Error | undefined
  const stop = (err: Error) => {
    stopped ??= err
    stream.destroy()
  }
  const watch = lowSpeedWatch(req.lowSpeed ?? defaultLowSpeed, what, stop)
  const abort = () => stop(req.signal?.reason instanceof Error ? req.signal.reason : new Error('aborted'))
  req.signal?.addEventListener('abort', abort, {once: true})
  try {
    req.signal?.throwIfAborted()
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (bytes + chunk.length > max) throw new IntegrityError(req.label, `${max} bytes`, `more than ${max} bytes`)
      bytes += chunk.length
      watch.add(chunk.length)
      hash.update(chunk)
      chunks.push(chunk)
      onBytes(chunk.length)
    }
    if (stopped) throw stopped
  } catch (err) {
    throw stopped ?? err
  } finally {
    watch.stop()
    req.signal?.removeEventListener('abort', abort)
    // The next attempt carries on from the running hash only if the file holds every byte it saw.
    running.hash = createHash('sha256')
    running.bytes = 0
    writeSmall(req.partial, chunks)
    running.hash = hash
    running.bytes = bytes
  }
  return bytes
}

/** `sha256:<hex>` of what `hash` has seen so far, leaving it open to carry on. */
function digestOf(hash: Hash): string {
  return `sha256:${hash.copy().digest('hex')}`
}

/** Cut the partial file to its first `size` bytes; a running hash past them no longer describes it. */
async function cut(path: string, size: number, running: RunningHash): Promise<number> {
  await truncate(path, size)
  if (running.bytes !== size) {
    running.hash = createHash('sha256')
    running.bytes = 0
  }
  return size
}

function hostOf(url: string | undefined): string {
  try {
    return url ? new URL(url).host || url : 'the server'
  } catch {
    return url ?? 'the server'
  }
}

function check(req: DownloadRequest, size: number, actual: string, total?: number): void {
  const want = req.size ?? total
  if (want !== undefined && size < want) {
    // Short body: a broken transfer, not bad content. Keep the partial file and resume.
    const err = new Error(`${req.label}: connection closed after ${size} of ${want} bytes`) as Error & {
      retryable: boolean
    }
    err.retryable = true
    throw err
  }
  if (want !== undefined && size !== want) {
    throw new IntegrityError(req.label, `${want} bytes`, `${size} bytes`)
  }
  if (actual !== req.digest) throw new IntegrityError(req.label, req.digest, actual)
}
