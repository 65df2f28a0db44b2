import {createHash} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {stat} from 'node:fs/promises'

import type {Got} from 'got'

import type {OpenedStream, Opener} from '../content/opener.js'
import type {Once} from '../once.js'
import {type DownloadResult, downloadVerified} from './download.js'
import {type HashCache, statFile} from './hash-cache.js'
import {hashFile} from './hashing-stream.js'
import {openStream} from './http.js'
import type {LowSpeed} from './low-speed.js'
import type {RetryPolicy} from './retry.js'

export interface FileFetchRequest {
  /** Where the bytes come from; `url` is only used when `open` is not given. */
  url: string
  open?: Opener
  /** `sha256:<hex>` the file must hash to. */
  digest: string
  /** Exact size when known (an OCI layer); else learned from the server. */
  size?: number
  /** Final path inside the store. */
  dest: string
  /** Partial download path inside the store's tmp. */
  partial: string
  /** Names the file in errors: `binary https://...`. */
  label: string
  /** Told the whole size when the server says it, and bytes as they arrive. */
  onTotal?: (total: number) => void
  onBytes?: (n: number) => void
  /** Passed to downloadVerified: run on the complete file before its rename (not on a file the store already holds). */
  check?: (partial: string) => Promise<void>
}

export interface FileFetchResult {
  size: number
  /** true when the store already had the file with this sha256. */
  reused: boolean
  bytesFetched: number
}

/** An Opener reading a verified file already in the store (a second path for the same content). */
export function localOpener(path: string): Opener {
  return async (offset: number): Promise<OpenedStream> => {
    const {size} = await stat(path)
    const start = offset <= size ? offset : 0
    return {stream: createReadStream(path, {start}), start, total: size, url: `file://${path}`}
  }
}

/**
 * Puts one file into the store: kept when the file already there hashes to
 * the digest (re-hashed every run, so a file changed on disk is never
 * trusted), else fetched through the one download routine, which verifies
 * size and digest before the rename. A URL is fetched once per run; a second
 * path for the same URL and digest gets a verified local copy.
 */
export class FileFetcher {
  constructor(
    private readonly opts: {
      http: Got
      /** Shared by every file of one run: digest and URL -> the path that holds it. */
      once: Once<string, string>
      /** Digests of unchanged files from earlier runs; without it every file in the store is hashed. */
      hashes?: HashCache
      policy?: RetryPolicy
      lowSpeed?: LowSpeed
      signal?: AbortSignal
    },
  ) {}

  /** What the file at `path` hashes to now: from the cache while unchanged, else read whole. */
  private async current(path: string): Promise<{digest: string; size: number} | undefined> {
    const st = await statFile(path)
    if (!st) return undefined
    const known = this.opts.hashes?.lookup(path, st)
    if (known) return {digest: known, size: st.size}
    const have = await hashFile(path)
    // Recorded with the stat taken before reading: a write during the read changes ctime, so it can never match.
    if (have && have.size === st.size) this.opts.hashes?.remember(path, st, have.digest)
    return have
  }

  /** The size of the file at `dest` when it is the one wanted (what fetch would keep), else undefined. Reads only. */
  async holds(req: Pick<FileFetchRequest, 'dest' | 'digest' | 'size'>): Promise<number | undefined> {
    const have = await this.current(req.dest)
    return have && have.digest === req.digest && (req.size === undefined || have.size === req.size)
      ? have.size
      : undefined
  }

  async fetch(req: FileFetchRequest): Promise<FileFetchResult> {
    const have = await this.current(req.dest)
    if (have && have.digest === req.digest && (req.size === undefined || have.size === req.size)) {
      req.onTotal?.(have.size)
      req.onBytes?.(have.size)
      return {size: have.size, reused: true, bytesFetched: 0}
    }
    let result: DownloadResult | undefined
    // Keyed by URL as well: two URLs that declare the same sha256 are each fetched and
    // checked (a copy-paste slip must fail, not borrow the other's bytes).
    const holder = await this.opts.once.run(`${req.digest} ${req.url}`, async () => {
      result = await this.download(req, req.open ?? this.httpOpener(req))
      return req.dest
    })
    if (result) return {size: result.size, reused: false, bytesFetched: result.bytesFetched}
    if (holder === req.dest) {
      // Another entry with this path already put it there in this run.
      const again = await this.current(req.dest)
      return {size: again?.size ?? 0, reused: true, bytesFetched: 0}
    }
    // Same content under another path: copy it, verified like any download.
    // Its own partial name: several paths may copy the same content at once.
    const copyPartial = `${req.partial}.${createHash('sha256').update(req.dest).digest('hex').slice(0, 16)}.copy`
    const copied = await this.download({...req, partial: copyPartial}, localOpener(holder))
    return {size: copied.size, reused: true, bytesFetched: 0}
  }

  private httpOpener(req: FileFetchRequest): Opener {
    let first = true
    return async (offset: number) => {
      const opened = await openStream(this.opts.http, req.url, {offset, what: req.label})
      if (opened.total !== undefined) req.onTotal?.(opened.total)
      if (first && opened.start > 0) req.onBytes?.(opened.start)
      first = false
      return opened
    }
  }

  private download(req: FileFetchRequest, open: Opener): Promise<DownloadResult> {
    return downloadVerified({
      open,
      digest: req.digest,
      size: req.size,
      dest: req.dest,
      partial: req.partial,
      label: req.label,
      onBytes: req.onBytes,
      check: req.check,
      policy: this.opts.policy,
      lowSpeed: this.opts.lowSpeed,
      signal: this.opts.signal,
    })
  }
}
