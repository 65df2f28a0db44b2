import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join, resolve} from 'node:path'

import pLimit from 'p-limit'

import type {LockFile, LockOsRepository} from '../bundle-json.js'
import {relativePathProblem} from '../content/paths.js'
import {inFlight} from '../defaults.js'
import {FailureError, NetworkError} from '../errors.js'
import {FileFetcher} from '../fetch/file-pull.js'
import {HashCache} from '../fetch/hash-cache.js'
import {createHttp, redactUrl} from '../fetch/http.js'
import {fetchSmall} from '../fetch/small.js'
import type {Manifest, OsPackageEntry, OsPackageType} from '../manifest/types.js'
import {Once} from '../once.js'
import {nodeConfigOf} from '../ospkgs/node-config.js'
import {readPublicKeys, writeKeys} from '../ospkgs/openpgp.js'
import type {OsFetchContext, PlannedFile} from '../ospkgs/plan.js'
import {resolverOf} from '../ospkgs/resolvers.js'
import {writeFileAtomic} from '../store/atomic.js'
import {formatBytes} from '../ui/format.js'
import {plural} from '../ui/table.js'
import {type PullContext, valuesOrFirstFailure} from './context.js'

export interface OsPullResult {
  repositories: LockOsRepository[]
  /** Every file of every repository once (metadata, keys, packages), for records.json. */
  files: LockFile[]
  /** Packages of the closures, fetched or kept. */
  packages: number
  bytesFetched: number
}

/**
 * `spec.osPackages` into the store: each type's entries resolved together by
 * its resolver (which reads the signed metadata into the store through the
 * context below), then each entry's key written beside its repository and
 * every package of the closures fetched through the one verified download
 * routine, in the pull's pool. Everything lands under `packages/` at the
 * mirrored paths of its URL (docs/os-packages.md).
 */
export async function pullOsPackages(manifest: Manifest, ctx: PullContext): Promise<OsPullResult> {
  const entries = manifest.osPackages ?? []
  if (entries.length === 0) return {repositories: [], files: [], packages: 0, bytesFetched: 0}
  const http = await createHttp({caFiles: ctx.caFiles})
  const hashes = new HashCache(join(ctx.store.tmp, 'os-hashes.json'))
  await hashes.load()
  const fetcher = new FileFetcher({http, once: new Once(), hashes, lowSpeed: ctx.lowSpeed, signal: ctx.signal})
  const storePath = (path: string): string => {
    const why = relativePathProblem(path)
    if (why) throw new FailureError(`${path}: not a path inside the store (${why})`)
    return resolve(ctx.store.packages, ...path.split('/'))
  }
  let bytesFetched = 0
  const fetchFile = (
    file: Omit<PlannedFile, 'kind' | 'os'>,
    label: string,
    task?: ReturnType<typeof ctx.progress.task>,
  ) =>
    ctx.pool(() =>
      fetcher.fetch({
        url: file.url,
        digest: `sha256:${file.sha256}`,
        size: file.size,
        dest: storePath(file.path),
        partial: ctx.store.partialPath(`sha256:${file.sha256}`, 'file', file.url),
        label,
        check: file.check,
        onTotal: task ? (n) => task.setTotal(n) : undefined,
        onBytes: task ? (n) => task.advance(n) : undefined,
      }),
    )
  const small = async (
    url: string,
    label: string,
    maxBytes: number,
    optional?: boolean,
  ): Promise<Buffer | undefined> => {
    try {
      return await ctx.pool(() => fetchSmall(http, url, {what: label, maxBytes, signal: ctx.signal}))
    } catch (err) {
      if (optional && err instanceof NetworkError && (err.status === 404 || err.status === 410)) return undefined
      throw err
    }
  }
  const fetchCtx: OsFetchContext = {
    async fetchVerified(file, label) {
      const r = await fetchFile(file, label)
      bytesFetched += r.bytesFetched
      return storePath(file.path)
    },
    async fetchSigned(req) {
      const bytes = await small(req.url, req.label, req.maxBytes, req.optional)
      if (!bytes) return undefined
      bytesFetched += bytes.length
      // Verified before it is written: nothing unverified gets its final name.
      await req.verify(bytes)
      return fetchCtx.putVerified({url: req.url, path: req.path, bytes})
    },
    async putVerified(req) {
      await writeIfChanged(storePath(req.path), req.bytes)
      return {bytes: req.bytes, path: req.path, url: req.url, sha256: sha256Hex(req.bytes), size: req.bytes.length}
    },
    fetchBytes: (req) => small(req.url, req.label, req.maxBytes, req.optional),
    storePath,
    progress: ctx.progress,
    signal: ctx.signal,
  }

  // Each type's entries together, the types side by side.
  const byType = new Map<OsPackageType, OsPackageEntry[]>()
  for (const e of entries) byType.set(e.type, [...(byType.get(e.type) ?? []), e])
  const plans = valuesOrFirstFailure(
    await Promise.allSettled(
      [...byType].map(async ([type, list]) => {
        const resolver = resolverOf(type)
        if (!resolver)
          throw new FailureError(
            `${manifest.file}:${list[0].pos.line}:${list[0].pos.column}: ${list[0].field}: OS packages of type ${type} are not supported yet`,
          )
        const task = ctx.progress.task(`${type} repositories: reading signed metadata and resolving`)
        try {
          const p = await resolver(list, fetchCtx)
          task.done(
            `${plural(
              p.reduce((n, r) => n + r.packages.length, 0),
              'package',
            )} in the closure`,
          )
          return p
        } catch (err) {
          task.fail((err as Error).message)
          throw err
        }
      }),
    ),
  ).flat()

  const files = new Map<string, LockFile>()
  const add = (f: LockFile) => files.set(f.path, f)
  // Keys beside their repositories, as a node reads them.
  const keys = new Map<string, string>()
  for (const plan of plans) {
    const node = nodeConfigOf(plan.entry.type)
    const path = `${plan.entry.path}${node.keySuffix}`
    if (keys.has(plan.entry.path)) continue
    const keyFile = plan.entry.type === 'apt' ? plan.entry.keyring : plan.entry.gpgKey
    const bytes = await writeKeys(
      await readPublicKeys(keyFile, `${manifest.file}: ${plan.entry.field}`),
      node.armoredKey,
    )
    await writeIfChanged(storePath(path), bytes)
    keys.set(plan.entry.path, path)
    add({kind: 'os-metadata', url: '', path, size: bytes.length, sha256: sha256Hex(bytes)})
  }
  for (const plan of plans) for (const m of plan.metadata) add(lockFileOf(m))

  // Each package once, however many entries' closures hold it.
  const packages = new Map<string, PlannedFile>()
  for (const plan of plans) for (const p of plan.packages) if (!packages.has(p.path)) packages.set(p.path, p)
  const inflight = pLimit(inFlight(ctx.concurrency))
  const fetched = valuesOrFirstFailure(
    await Promise.allSettled(
      [...packages.values()].map((p) =>
        inflight(async () => {
          const task = ctx.progress.task(p.path)
          try {
            const r = await fetchFile(p, `${p.os ? `${p.os.name} ${p.os.version} ` : ''}${redactUrl(p.url)}`, task)
            bytesFetched += r.bytesFetched
            task.done(`${formatBytes(r.size)}${r.reused ? ', in the store' : ''}`)
            return p
          } catch (err) {
            task.fail((err as Error).message)
            throw err
          }
        }),
      ),
    ),
  )
  await hashes.save()
  for (const p of fetched) add(lockFileOf(p))

  const repositories = plans.map((plan): LockOsRepository => ({
    ...plan.repository,
    key: keys.get(plan.entry.path)!,
    files: [
      ...new Set([
        keys.get(plan.entry.path)!,
        ...plan.metadata.map((m) => m.path),
        ...plan.packages.map((p) => p.path),
      ]),
    ].sort(),
  }))
  return {repositories, files: [...files.values()], packages: packages.size, bytesFetched}
}

function lockFileOf(f: PlannedFile): LockFile {
  return {kind: f.kind, url: f.url, path: f.path, size: f.size, sha256: f.sha256, ...(f.os ? {os: f.os} : {})}
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

/** Written atomically, and only when the store does not already hold these bytes (a re-pull touches nothing). */
async function writeIfChanged(path: string, bytes: Buffer): Promise<void> {
  const have = await readFile(path).catch(() => undefined)
  if (have && have.equals(bytes)) return
  await writeFileAtomic(path, bytes)
}
