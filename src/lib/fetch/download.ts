import {createHash} from 'node:crypto'
import {createReadStream, createWriteStream} from 'node:fs'
import {mkdir, rm, stat, truncate} from 'node:fs/promises'
import {dirname} from 'node:path'
import {Transform} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import {IntegrityError} from '../errors.js'
import {HashingStream} from '../oci/digest.js'
import {commitFile} from '../store/atomic.js'
import type {OpenedStream} from './http.js'
import {type RetryPolicy, withRetry} from './retry.js'

/** Opens the content from byte `offset`; may start at 0 instead when the server cannot resume. */
export type Opener = (offset: number) => Promise<OpenedStream>

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
  subject: string
  onBytes?: (n: number) => void
  policy?: RetryPolicy
  signal?: AbortSignal
}

export interface DownloadResult {
  /** Bytes received from the network in this call, retries included. */
  bytesFetched: number
  /** Bytes of a partial file left by an earlier run that were kept, not fetched again. */
  bytesResumed: number
  size: number
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size
  } catch {
    return 0
  }
}

/**
 * The one download routine, for image blobs and files alike: stream to a
 * partial file while hashing, resume it with Range after a break (hashing
 * what is already there first), compare size and digest at EOF, and only
 * then fsync and rename to the final name. A mismatch deletes the partial
 * file and starts over once before failing.
 */
export async function downloadVerified(req: DownloadRequest): Promise<DownloadResult> {
  await mkdir(dirname(req.partial), {recursive: true})
  const initial = await sizeOf(req.partial)
  let fetched = 0
  for (let round = 1; ; round++) {
    try {
      const r = await withRetry(() => attempt(req, (n) => (fetched += n)), {policy: req.policy, signal: req.signal})
      await commitFile(req.partial, req.dest)
      // What an earlier run left and this one did not have to fetch again.
      const resumed = Math.min(initial, Math.max(0, r.size - fetched))
      return {bytesFetched: fetched, bytesResumed: resumed, size: r.size}
    } catch (err) {
      if (err instanceof IntegrityError) {
        await rm(req.partial, {force: true})
        if (round < 2) continue
      }
      throw err
    }
  }
}

async function attempt(req: DownloadRequest, count: (n: number) => void): Promise<{size: number}> {
  let have = await sizeOf(req.partial)
  if (req.size !== undefined && have > req.size) {
    await truncate(req.partial, 0)
    have = 0
  }
  const hash = createHash('sha256')
  if (have > 0) for await (const chunk of createReadStream(req.partial, {end: have - 1})) hash.update(chunk as Buffer)
  // A complete partial file (killed between EOF and rename) needs no request.
  const opened = req.size !== undefined && have === req.size ? undefined : await req.open(have)
  if (opened && opened.start === 0 && have > 0) {
    // The server ignored the Range: start the file and the hash over.
    await truncate(req.partial, 0)
    hash.destroy()
    return attemptFresh(req, opened, count)
  }
  if (opened) {
    const expectedTotal = req.size ?? opened.total
    const hasher = new HashingStream(expectedTotal === undefined ? undefined : expectedTotal - have, req.subject, hash)
    const counter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        count(chunk.length)
        req.onBytes?.(chunk.length)
        cb(null, chunk)
      },
    })
    await pipeline(opened.stream, hasher, counter, createWriteStream(req.partial, {flags: 'a'}), {signal: req.signal})
  } else {
    req.onBytes?.(0)
  }
  const size = await sizeOf(req.partial)
  const actual = `sha256:${hash.digest('hex')}`
  check(req, size, actual, opened?.total)
  return {size}
}

async function attemptFresh(req: DownloadRequest, opened: OpenedStream, count: (n: number) => void) {
  const hasher = new HashingStream(req.size ?? opened.total, req.subject)
  const counter = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      count(chunk.length)
      req.onBytes?.(chunk.length)
      cb(null, chunk)
    },
  })
  await pipeline(opened.stream, hasher, counter, createWriteStream(req.partial, {flags: 'w'}), {signal: req.signal})
  const size = await sizeOf(req.partial)
  check(req, size, hasher.digest(), opened.total)
  return {size}
}

function check(req: DownloadRequest, size: number, actual: string, total?: number): void {
  const want = req.size ?? total
  if (want !== undefined && size < want) {
    // Short body: a broken transfer, not bad content. Keep the partial file and resume.
    const err = new Error(`${req.subject}: connection closed after ${size} of ${want} bytes`) as Error & {retryable: boolean}
    err.retryable = true
    throw err
  }
  if (want !== undefined && size !== want) {
    throw new IntegrityError(req.subject, `${want} bytes`, `${size} bytes`)
  }
  if (actual !== req.digest) throw new IntegrityError(req.subject, req.digest, actual)
}
