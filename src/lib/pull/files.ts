import {join, resolve} from 'node:path'

import type {Got} from 'got'
import pLimit from 'p-limit'

import type {LockFile} from '../bundle-json.js'
import {parseOciChartRef, resolveOciChart} from '../charts/oci.js'
import {findChart, RepoIndexCache} from '../charts/repo-index.js'
import {type StoredChart, writeStoreIndex} from '../charts/store-index.js'
import {digestHex} from '../content/digest.js'
import type {Opener} from '../content/opener.js'
import {relativePathProblem} from '../content/paths.js'
import {inFlight} from '../defaults.js'
import {FailureError, isAirlockError} from '../errors.js'
import {ChecksumFiles} from '../fetch/checksum.js'
import {FileFetcher} from '../fetch/file-pull.js'
import {HashCache} from '../fetch/hash-cache.js'
import {createHttp, headSize, redactUrl} from '../fetch/http.js'
import type {ChartEntry, Manifest, PackageEntry, UrlFileEntry} from '../manifest/types.js'
import {Once} from '../once.js'
import type {Store} from '../store/store.js'
import {formatBytes, shortDigest} from '../ui/format.js'
import {type PullContext, valuesOrFirstFailure} from './context.js'

export interface FilePullResult {
  kind: 'binary' | 'package' | 'chart'
  url: string
  path: string
  size: number
  sha256: string
  /** true when the store already had it and nothing was downloaded. */
  reused: boolean
  bytesFetched: number
  /** The file's entry for records.json / bundle.json. */
  lock: LockFile
}

/** What an entry resolves to before its download: where the bytes are and what they must hash to. */
interface Resolved {
  url: string
  digest: string
  size?: number
  open?: Opener
  chart?: StoredChart['entry']
}

/**
 * What each entry resolves to (an inline sha256, a checksum file, a chart
 * index or an OCI chart), with the repository indexes and checksum files of
 * one run read once; a checksum file's problem named by the entry's line.
 */
function entryResolver(
  manifest: Manifest,
  ctx: Pick<PullContext, 'registry' | 'signal'>,
  http: Got,
): (entry: UrlFileEntry | ChartEntry) => Promise<Resolved> {
  const repos = new RepoIndexCache({http, signal: ctx.signal})
  const checksums = new ChecksumFiles({http, signal: ctx.signal})
  const resolveEntry = async (entry: UrlFileEntry | ChartEntry): Promise<Resolved> => {
    if (entry.kind !== 'chart') {
      const hex = entry.sha256 ?? (await checksums.sha256For(entry.checksumUrl!, entry.url))
      return {url: entry.url, digest: `sha256:${hex}`}
    }
    if (entry.repo !== undefined) {
      const found = findChart(await repos.get(entry.repo), entry.repo, entry.name, entry.version)
      return {url: found.url, digest: found.digest, chart: found.entry}
    }
    const oci = await resolveOciChart(
      ctx.registry(parseOciChartRef(entry.ociRef!).registry),
      entry.ociRef!,
      entry.name,
      entry.version,
    )
    return {url: oci.url, digest: oci.digest, size: oci.size, open: oci.open, chart: oci.entry}
  }
  return (entry) =>
    resolveEntry(entry).catch((error: unknown) => {
      // A checksum file's problem is the entry's: named by its manifest line, as a sha256 mismatch is.
      // Any of ours (a 404 or an unreachable host is a NetworkError): its kind kept, the line put in front.
      if (isAirlockError(error) && entry.kind !== 'chart' && entry.checksumUrl) {
        error.message = `${manifest.file}:${entry.pos.line}:${entry.pos.column}: binary ${redactUrl(entry.url)}: ${error.message}`
      }
      throw error
    })
}

/** How errors name an entry's download: its manifest line first, as validate names it, then where the sha256 came from. */
function entryLabel(manifest: Manifest, entry: UrlFileEntry | ChartEntry, src: Resolved): string {
  const from = entry.kind !== 'chart' && entry.checksumUrl ? ` (sha256 from ${redactUrl(entry.checksumUrl)})` : ''
  return `${manifest.file}:${entry.pos.line}:${entry.pos.column}: ${entry.kind} ${entry.kind === 'chart' ? `${entry.name} ${entry.version} (${redactUrl(src.url)})` : redactUrl(src.url)}${from}`
}

/** What a pull of one file would do (`pull --dry-run`). */
export interface FilePlan {
  kind: 'binary' | 'package' | 'chart'
  url: string
  path: string
  /** Where the manifest says it comes from: the URL, or a chart's repository or OCI reference. */
  source: string
  sha256: string
  /** Bytes, from the store's copy, the OCI manifest or the server's Content-Length; null when the server gives none. */
  size: number | null
  /** true when the store holds the file with this sha256 (as pull decides: its hash cache, else the file hashed). */
  reused: boolean
  /** Bytes a pull would fetch: 0 when reused, null when the size is unknown. */
  bytesToFetch: number | null
}

/**
 * Plan every binary, package and chart as pull would take it: checksums
 * resolved by the same resolver, the store's copy checked as FileFetcher
 * checks it (nothing written, the hash cache only read), and a missing
 * file's size asked with HEAD, as many at once as pull's pool.
 */
export async function planFiles(
  manifest: Manifest,
  ctx: Pick<PullContext, 'store' | 'registry' | 'caFiles' | 'concurrency' | 'signal'>,
): Promise<FilePlan[]> {
  const entries: (UrlFileEntry | PackageEntry)[] = [...manifest.binaries, ...manifest.packages]
  if (entries.length === 0) return []
  const http = await createHttp({caFiles: ctx.caFiles})
  const hashes = new HashCache(join(ctx.store.tmp, 'file-hashes.json'))
  await hashes.load()
  const fetcher = new FileFetcher({http, once: new Once(), hashes, signal: ctx.signal})
  const resolveEntry = entryResolver(manifest, ctx, http)
  const pool = pLimit(ctx.concurrency)
  const planOne = async (entry: UrlFileEntry | ChartEntry): Promise<FilePlan> => {
    const src = await resolveEntry(entry)
    const held = await pool(() =>
      fetcher.holds({dest: storePathOf(ctx.store, entry), digest: src.digest, size: src.size}),
    )
    const size =
      held ??
      src.size ??
      (await pool(() => headSize(http, src.url, entryLabel(manifest, entry, src), ctx.signal))) ??
      null
    return {
      kind: entry.kind,
      url: entry.kind === 'chart' ? src.url : entry.url,
      path: entry.path,
      source: entry.kind === 'chart' ? (entry.repo ?? entry.ociRef!) : entry.url,
      sha256: digestHex(src.digest),
      size,
      reused: held !== undefined,
      bytesToFetch: held === undefined ? size : 0,
    }
  }
  return valuesOrFirstFailure(await Promise.allSettled(entries.map((e) => planOne(e))))
}

/** Where an entry lives in the store: binaries under files/, packages and charts under packages/. */
export function storePathOf(store: Store, entry: UrlFileEntry | ChartEntry): string {
  const root = entry.kind === 'binary' ? store.files : store.packages
  // The manifest loader already refuses `..`; this keeps a bad path from ever leaving the store.
  const why = relativePathProblem(entry.path)
  if (why) throw new FailureError(`${entry.path}: not a path inside the store (${why})`)
  return resolve(root, ...entry.path.split('/'))
}

/**
 * Pull every binary and package of the manifest into the store: checksums
 * resolved (inline, a checksum file, a chart index or an OCI manifest), then
 * each file through the shared pool and the one verified download routine.
 * Charts also get the store's charts/index.yaml, merged with those already there.
 */
export async function pullFiles(manifest: Manifest, ctx: PullContext): Promise<FilePullResult[]> {
  const entries: (UrlFileEntry | PackageEntry)[] = [...manifest.binaries, ...manifest.packages]
  if (entries.length === 0) return []
  const http = await createHttp({caFiles: ctx.caFiles})
  const hashes = new HashCache(join(ctx.store.tmp, 'file-hashes.json'))
  await hashes.load()
  const fetcher = new FileFetcher({http, once: new Once(), hashes, lowSpeed: ctx.lowSpeed, signal: ctx.signal})
  const resolveEntry = entryResolver(manifest, ctx, http)

  const charts: StoredChart[] = []
  const pullOne = async (entry: UrlFileEntry | ChartEntry): Promise<FilePullResult> => {
    const task = ctx.progress.task(entry.kind === 'chart' ? `chart ${entry.name} ${entry.version}` : entry.path)
    try {
      const dest = storePathOf(ctx.store, entry)
      const src = await resolveEntry(entry)
      const label = entryLabel(manifest, entry, src)
      // One pool slot per file: hashing what is there and downloading are both the pool's kind of work.
      const r = await ctx.pool(() =>
        fetcher.fetch({
          url: src.url,
          open: src.open,
          digest: src.digest,
          size: src.size,
          dest,
          partial: ctx.store.partialPath(src.digest, 'file', src.url),
          label,
          onTotal: (n) => task.setTotal(n),
          onBytes: (n) => task.advance(n),
        }),
      )
      if (src.chart) charts.push({entry: src.chart, digest: src.digest})
      task.done(
        `${shortDigest(src.digest)} ${formatBytes(r.size)}${r.reused ? ', in the store' : `, fetched ${formatBytes(r.bytesFetched)}`}`,
      )
      const sha256 = digestHex(src.digest)
      const url = entry.kind === 'chart' ? src.url : entry.url
      return {
        kind: entry.kind,
        url,
        path: entry.path,
        size: r.size,
        sha256,
        reused: r.reused,
        bytesFetched: r.bytesFetched,
        lock: {kind: entry.kind, url, path: entry.path, size: r.size, sha256},
      }
    } catch (err) {
      task.fail((err as Error).message)
      throw err
    }
  }

  // A bounded number of files at once: a progress row each only while it runs.
  const inflight = pLimit(inFlight(ctx.concurrency))
  const settled = await Promise.allSettled(entries.map((e) => inflight(() => pullOne(e))))
  await hashes.save()
  // The index lists every chart now in the store, even when another entry failed.
  if (entries.some((e) => e.kind === 'chart')) {
    charts.sort((a, b) => a.entry.name.localeCompare(b.entry.name) || a.entry.version.localeCompare(b.entry.version))
    await writeStoreIndex(ctx.store, charts)
  }
  return valuesOrFirstFailure(settled)
}
