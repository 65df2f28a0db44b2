import {createHash, type KeyObject} from 'node:crypto'
import {createReadStream} from 'node:fs'
import {mkdir, readdir, rm} from 'node:fs/promises'
import {join, resolve} from 'node:path'
import {Readable} from 'node:stream'
import {pipeline} from 'node:stream/promises'

import pLimit from 'p-limit'

import type {BundleLock, LockTool} from '../../bundle-json.js'
import {DEFAULT_CONCURRENCY} from '../../defaults.js'
import {FailureError, UsageError} from '../../errors.js'
import type {Manifest} from '../../manifest/types.js'
import {parseTempName} from '../../store/atomic.js'
import {acquirePidLock} from '../../store/pid-lock.js'
import {readRecords, recordsPath} from '../../store/records.js'
import {readSmall, SMALL_FILE} from '../../store/small-files.js'
import {Store} from '../../store/store.js'
import {checkedBody, encodeHeader, endOfArchive, inBlocks, padding} from '../../tar/writer.js'
import {formatBytes, formatRate} from '../../ui/format.js'
import {type Progress, silentProgress} from '../../ui/progress.js'
import {plural} from '../../ui/table.js'
import {readBases} from '../format/base.js'
import {BUNDLE_FILES, isToolName, lockText} from '../format/bundle-files.js'
import {removeStaleSignature, signSums, SUMS_SIGNATURE} from '../format/bundle-signature.js'
import {type DeltaSummary, deltaSummary} from '../format/delta.js'
import {lockProblems} from '../format/read-lock.js'
import {formatSums} from '../format/sums.js'
import {reproducibleGzip} from './gzip.js'
import {imagesArchive} from './images.js'
import {BundleOutput, type WrittenFile} from './output.js'
import {type ArchiveItem, planBundle} from './plan.js'
import {selectRecords} from './select.js'

export interface BundleOptions {
  store: string
  out: string
  /** Bytes per part; unset writes each archive whole. */
  split?: number
  /** Archives written at once (at most 3). */
  concurrency?: number
  /** Seconds since the epoch for every entry's mtime; default SOURCE_DATE_EPOCH or 0. */
  mtime?: number
  /** Files for the seed node to carry beside the archives (the importer); listed in bundle.json `tools` and SHA256SUMS. */
  tools?: BundleTool[]
  progress?: Progress
  /** Bundle only what this manifest names (build, bundle --manifest); without it, everything the store recorded. */
  manifest?: Manifest
  /** `--since`: bundle folders, bundle.json or inventory files; the archives carry only what none of them holds. */
  since?: string[]
  /** Sign SHA256SUMS with this ECDSA P-256 key: SHA256SUMS.sig beside it. */
  signKey?: KeyObject
}

export interface BundleTool {
  /** File name in the bundle folder. */
  path: string
  /** `os/arch` of an executable. */
  platform?: string
  /** A file to copy, or the bytes themselves. */
  source: string | Buffer
  mode: number
}

export interface BundleResult {
  out: string
  store: string
  name: string
  version?: string
  images: number
  files: number
  /** Every file written into the bundle folder, as SHA256SUMS lists it (plus SHA256SUMS itself, and SHA256SUMS.sig when signed). */
  written: WrittenFile[]
  /** Bytes read from the store into archives. */
  bytesIn: number
  /** Bytes written into the bundle folder. */
  bytesOut: number
  ms: number
  /** For a delta: what it carries and what it leaves to its bases. */
  delta?: DeltaSummary
}

const READ_CHUNK = 1 << 20

/** mtime of every entry: SOURCE_DATE_EPOCH (reproducible-builds.org) or 0. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.SOURCE_DATE_EPOCH
  if (v === undefined || v === '') return 0
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(Number(v)))
    throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds since 1970, got "${v}"`)
  return Number(v)
}

/**
 * Write the bundle of a store: the three archives streamed straight from the
 * store (each byte hashed and checked against the records on the way),
 * the tools (the importer), bundle.json and SHA256SUMS. Everything is written under temporary names
 * and renamed at the end, archives first and SHA256SUMS last.
 */
export async function writeBundle(opts: BundleOptions): Promise<BundleResult> {
  const started = Date.now()
  const progress = opts.progress ?? silentProgress
  const mtime = opts.mtime ?? sourceDateEpoch()
  const store = new Store(opts.store)
  const out = resolve(opts.out)
  const records = await readRecords(store).catch((err: Error) => {
    throw new FailureError(`${recordsPath(store)} is not readable JSON: ${err.message}`)
  })
  if (!records) {
    throw new UsageError(`${store.root} holds no records.json: nothing was pulled into it`, {
      suggestions: ['run `airlock pull MANIFEST --store DIR` first, or point --store at the store pull wrote'],
    })
  }
  const shape = lockProblems(records)
  if (shape.length > 0) throw new FailureError(`${recordsPath(store)} is malformed`, {details: shape})
  const selected = opts.manifest ? selectRecords(records, opts.manifest) : records
  const base = opts.since && opts.since.length > 0 ? await readBases(opts.since) : undefined

  await mkdir(out, {recursive: true})
  const releaseOut = await acquirePidLock(join(out, '.airlock-bundle.lock'), `bundle folder ${out}`)
  let releaseStore: (() => Promise<void>) | undefined
  const outputs: BundleOutput[] = []
  try {
    await removeStaleTemps(out)
    releaseStore = await store.lock()
    const plan = await planBundle(store, selected, base)
    if (plan.problems.length > 0) {
      throw new FailureError(
        `the store ${store.root} does not match its records (${plan.problems.length} problem${plan.problems.length === 1 ? '' : 's'}); nothing was bundled`,
        {
          details: plan.problems,
          suggestions: ['run `airlock pull` again with the same manifest to repair the store'],
        },
      )
    }
    if (plan.strays > 0 && !opts.manifest)
      progress.warn(
        `${plural(plan.strays, 'file')} in the store ${plan.strays === 1 ? 'is' : 'are'} not in records.json and ${plan.strays === 1 ? 'is' : 'are'} left out`,
      )

    let bytesIn = 0
    /** An archive's bytes, and their total for progress; `onBytes` counts what is read from the store. */
    type Archive = {total: number; bytes: (onBytes: (n: number) => void) => Readable}
    const files = (items: ArchiveItem[]) => async (): Promise<Archive> => ({
      total: items.reduce((n, i) => n + i.size, 0),
      // In blocks for gzip (see TAR_BLOCK).
      bytes: (onBytes) =>
        Readable.from(inBlocks(archiveBytes(items, mtime, onBytes)), {objectMode: false, highWaterMark: READ_CHUNK}),
    })
    const jobs: {name: string; archive: () => Promise<Archive>; gzip: boolean}[] = [
      {name: BUNDLE_FILES.files, archive: files(plan.files), gzip: true},
      {name: BUNDLE_FILES.packages, archive: files(plan.packages), gzip: true},
      {
        name: BUNDLE_FILES.images,
        archive: async () => {
          const archive = imagesArchive(store, plan.images, plan.lock, mtime)
          return {total: archive.size, bytes: (onBytes) => archive.stream(onBytes)}
        },
        gzip: false,
      },
    ]
    const limit = pLimit(Math.max(1, Math.min(opts.concurrency ?? DEFAULT_CONCURRENCY, jobs.length)))
    // Every started archive ends (and queued ones never start) before a failure is reported and cleaned up.
    const settled = await Promise.allSettled(
      jobs.map((job) =>
        limit(async () => {
          const task = progress.task(job.name)
          const t0 = Date.now()
          const output = new BundleOutput(out, job.name, opts.split)
          outputs.push(output)
          try {
            const archive = await job.archive()
            const total = archive.total
            task.setTotal(total)
            const source = archive.bytes((n) => {
              bytesIn += n
              task.advance(n)
            })
            if (job.gzip) {
              await pipeline(source, reproducibleGzip(), output)
            } else {
              await pipeline(source, output)
            }
            const ms = Date.now() - t0
            task.done(
              `${formatBytes(output.bytes)}${opts.split === undefined ? '' : ` in ${plural(output.parts.length, 'part')}`}, ${formatRate(total, ms)}`,
            )
          } catch (err) {
            limit.clearQueue()
            task.fail((err as Error).message)
            throw err
          }
        }),
      ),
    )
    const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed) throw failed.reason

    const tools: LockTool[] = []
    for (const tool of [...(opts.tools ?? [])].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
      const inBase =
        base && tool.platform !== undefined
          ? await toolInBase(
              tool,
              base.bases.map((b) => b.lock),
            )
          : undefined
      if (inBase) {
        tools.push({
          path: inBase.path,
          platform: tool.platform,
          size: inBase.size,
          sha256: inBase.sha256,
          fromBase: true,
        })
        continue
      }
      const toolOut = new BundleOutput(out, tool.path, undefined, undefined, tool.mode)
      outputs.push(toolOut)
      const source =
        typeof tool.source === 'string'
          ? createReadStream(tool.source, {highWaterMark: READ_CHUNK})
          : Readable.from([tool.source])
      await pipeline(source, toolOut)
      const [w] = toolOut.written
      tools.push({
        path: tool.path,
        ...(tool.platform === undefined ? {} : {platform: tool.platform}),
        size: w.size,
        sha256: w.sha256,
      })
    }

    // Archives done: the lock now has every digest (the chart index's too).
    const lock: BundleLock = opts.tools === undefined ? plan.lock : {...plan.lock, tools}
    const lockOut = new BundleOutput(out, BUNDLE_FILES.lock)
    outputs.push(lockOut)
    await pipeline(Readable.from(lockText(lock), {objectMode: false}), lockOut)
    const listed = [...outputs.flatMap((o) => o.written)]
    const sumsOut = new BundleOutput(out, BUNDLE_FILES.sums)
    outputs.push(sumsOut)
    const sums = Buffer.from(formatSums(listed))
    await pipeline(Readable.from([sums]), sumsOut)
    const sigOut = opts.signKey ? new BundleOutput(out, SUMS_SIGNATURE) : undefined
    if (sigOut && opts.signKey) {
      outputs.push(sigOut)
      await pipeline(Readable.from([Buffer.from(signSums(sums, opts.signKey))]), sigOut)
    } else {
      await removeStaleSignature(out)
    }

    for (const o of outputs) await o.commit()
    await removeStaleTools(out, new Set(tools.map((t) => t.path)))
    const written = [...listed, ...sumsOut.written, ...(sigOut?.written ?? [])]
    const delta = deltaSummary(plan.lock)
    return {
      out,
      store: store.root,
      name: plan.lock.name,
      ...(plan.lock.version === undefined ? {} : {version: plan.lock.version}),
      images: plan.lock.images.length,
      files: plan.lock.files.length,
      written,
      bytesIn,
      bytesOut: written.reduce((n, w) => n + w.size, 0),
      ms: Date.now() - started,
      ...(delta ? {delta} : {}),
    }
  } catch (err) {
    for (const o of outputs) await o.abort().catch(() => {})
    throw err
  } finally {
    await releaseStore?.()
    await releaseOut()
  }
}

/**
 * One archive's bytes: each entry's header, its body read from the store
 * (hashed as it flows, the hot path) and padding, then the end marker.
 * A body that differs from what the records say stops the archive.
 */
export async function* archiveBytes(
  items: ArchiveItem[],
  mtime: number,
  onBytes: (n: number) => void,
): AsyncGenerator<Buffer> {
  for (const item of items) {
    yield encodeHeader({path: item.path, type: item.type, size: item.size, mode: item.mode, mtime})
    if (item.type !== 'file') continue
    if (item.data) {
      item.onDigest?.(createHash('sha256').update(item.data).digest('hex'))
      onBytes(item.data.length)
      yield item.data
      yield padding(item.data.length)
      continue
    }
    // A small file is read whole, at once (see readSmall); a larger one streams, with a read buffer no larger than the file.
    const chunks =
      item.size <= SMALL_FILE
        ? [readSmall(item.source!, item.size, () => `${item.label}: missing from the store`)]
        : (createReadStream(item.source!, {
            highWaterMark: Math.max(1, Math.min(READ_CHUNK, item.size)),
          }) as AsyncIterable<Buffer>)
    const hex = yield* checkedBody(chunks, {
      size: item.size,
      sha256: item.sha256,
      label: `${item.label} (the store file changed since it was pulled)`,
      onBytes,
    })
    item.onDigest?.(hex)
  }
  yield endOfArchive()
}

/**
 * A delta leaves out an executable a base lists with the same bytes (a base that carries it, or one that left it to
 * its own base): import.sh finds it there by its sha256. Hashed first, as the bytes decide.
 */
async function toolInBase(
  tool: BundleTool,
  bases: BundleLock[],
): Promise<Pick<LockTool, 'path' | 'size' | 'sha256'> | undefined> {
  const listed = bases.flatMap((l) => l.tools ?? []).filter((t) => t.path === tool.path)
  if (listed.length === 0) return undefined
  const hash = createHash('sha256')
  let size = 0
  const chunks =
    typeof tool.source === 'string'
      ? (createReadStream(tool.source, {highWaterMark: READ_CHUNK}) as AsyncIterable<Buffer>)
      : [tool.source]
  for await (const chunk of chunks) {
    hash.update(chunk)
    size += chunk.length
  }
  const sha256 = hash.digest('hex')
  return listed.some((t) => t.sha256 === sha256 && t.size === size) ? {path: tool.path, size, sha256} : undefined
}

/** An importer an earlier bundle into this folder carried and this one does not: it would sit there unverified. */
async function removeStaleTools(dir: string, keep: Set<string>): Promise<void> {
  for (const e of await readdir(dir)) {
    if (isToolName(e) && !keep.has(e)) await rm(join(dir, e), {force: true})
  }
}

/** Temporary files a killed bundle left behind (only ours, by their name pattern). */
async function removeStaleTemps(dir: string): Promise<void> {
  for (const e of await readdir(dir)) {
    if (parseTempName(e)) await rm(join(dir, e), {force: true})
  }
}

export type {BundleLock}
