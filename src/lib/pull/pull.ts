import pLimit from 'p-limit'

import type {LockFile, LockImage} from '../lock.js'
import type {LowSpeed} from '../fetch/low-speed.js'
import {parseOciChartRef} from '../charts/oci.js'
import {formatProblem, UsageError} from '../errors.js'
import type {Manifest} from '../manifest/types.js'
import {manifestWarnings} from '../manifest/warnings.js'
import {RegistryClient} from '../registry/client.js'
import {mergeRecords} from '../store/records.js'
import {Store} from '../store/store.js'
import type {Progress} from '../ui/progress.js'
import {type PullContext, valuesOrFirstFailure} from './context.js'
import {type FilePullResult, pullFiles} from './files.js'
import {type ImagePullResult, pullImages} from './images.js'

export interface PullOptions {
  store: string
  concurrency: number
  progress: Progress
  caFiles?: string[]
  platforms?: string[]
  username?: string
  password?: string
  lowSpeed?: LowSpeed
  signal?: AbortSignal
}

export interface PullResult {
  store: string
  images: ImagePullResult[]
  files: FilePullResult[]
}

/**
 * Fetch everything a manifest names into the store: images and files at
 * once, through one download pool, under the store's lock.
 */
export async function pull(manifest: Manifest, opts: PullOptions): Promise<PullResult> {
  const loginHost = credentialsHost(manifest, opts)
  for (const w of manifestWarnings(manifest)) opts.progress.warn(formatProblem(w))
  const store = new Store(opts.store)
  const release = await store.lock()
  try {
    await store.init()
    const caFiles = opts.caFiles ?? []
    const clients = new Map<string, RegistryClient>()
    const registry = (host: string): RegistryClient => {
      let c = clients.get(host)
      if (!c) {
        const settings = manifest.registries.find((r) => r.host === host)
        c = new RegistryClient({
          registry: host,
          insecure: settings?.insecure,
          caFiles: [...caFiles, ...(settings?.caFile ? [settings.caFile] : [])],
          credentials: host === loginHost ? {username: opts.username!, password: opts.password ?? ''} : undefined,
          signal: opts.signal,
          onWarning: (m) => opts.progress.warn(m),
        })
        clients.set(host, c)
      }
      return c
    }
    const ctx: PullContext = {
      store,
      pool: pLimit(opts.concurrency),
      concurrency: opts.concurrency,
      progress: opts.progress,
      caFiles,
      platforms: opts.platforms && opts.platforms.length > 0 ? opts.platforms : undefined,
      registry,
      lowSpeed: opts.lowSpeed,
      signal: opts.signal,
    }
    // Both halves end before the lock is released, even when one fails.
    const [images, files] = valuesOrFirstFailure(await Promise.allSettled([pullImages(manifest, ctx), pullFiles(manifest, ctx)])) as [
      ImagePullResult[],
      FilePullResult[],
    ]
    await mergeRecords(store, {
      name: manifest.name,
      version: manifest.version,
      images: images.map((i) => i.lock satisfies LockImage),
      files: files.map((f) => f.lock satisfies LockFile),
    })
    return {store: store.root, images, files}
  } finally {
    await release()
  }
}

/**
 * The one registry host that --username/--password are for, so they never
 * reach another registry or its token service: the host in spec.registries
 * when it names one, else the only registry the manifest pulls from.
 */
function credentialsHost(manifest: Manifest, opts: PullOptions): string | undefined {
  if (opts.username === undefined) return undefined
  const listed = manifest.registries.map((r) => r.host)
  const used = new Set(manifest.images.map((i) => i.ref.registry))
  for (const p of manifest.packages) if (p.kind === 'chart' && p.ociRef) used.add(parseOciChartRef(p.ociRef).registry)
  const candidates = listed.length > 0 ? listed : [...used]
  if (candidates.length === 1) return candidates[0]
  throw new UsageError(
    `--username/--password: the manifest names ${candidates.length === 0 ? 'no registry' : `several registries (${candidates.join(', ')})`}; ` +
      'list the one these credentials are for, alone, in spec.registries, and keep the others in the Docker config',
  )
}
