import pLimit from 'p-limit'

import type {LockFile, LockImage} from '../bundle-json.js'
import {formatProblem} from '../errors.js'
import type {LowSpeed} from '../fetch/low-speed.js'
import type {ConnectionOptions} from '../fetch/tls.js'
import type {Manifest} from '../manifest/types.js'
import {manifestWarnings} from '../manifest/warnings.js'
import {sourceClients} from '../select/clients.js'
import {type RepositoriesReport, type Resolution, resolveManifest, type SelectionReport} from '../select/resolve.js'
import {mergeRecords} from '../store/records.js'
import {Store} from '../store/store.js'
import type {Progress} from '../ui/progress.js'
import {type PullContext, valuesOrFirstFailure} from './context.js'
import {type FilePlan, type FilePullResult, planFiles, pullFiles} from './files.js'
import {type ImagePlan, type ImagePullResult, planImages, pullImages} from './images.js'
import {type OsPullResult, pullOsPackages} from './os-packages.js'

export interface PullOptions extends Pick<ConnectionOptions, 'caFiles'> {
  store: string
  concurrency: number
  progress: Progress
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
  /** The `spec.osPackages` repositories mirrored (absent when the manifest has none). */
  osPackages?: {repositories: OsPullResult['repositories']; packages: number; bytesFetched: number}
  /** What each tag selection of the manifest took and left (absent when it has no selections). */
  selections?: SelectionReport[]
  repositories?: RepositoriesReport[]
}

/** What `pull --dry-run` prints: per image and file what a pull would take, fetch and reuse, selections resolved. */
export interface PullPlan {
  store: string
  images: ({kind: 'image'} & ImagePlan)[]
  files: FilePlan[]
  /** The manifest's spec.osPackages repositories, which a dry run does not plan (their indexes are read by pull). */
  osRepositories: number
  selections: SelectionReport[]
  repositories: RepositoriesReport[]
}

/** The manifest with its selections resolved against the registries (as it is when it has none). */
export function resolvePullManifest(
  manifest: Manifest,
  opts: Pick<PullOptions, 'caFiles' | 'username' | 'password' | 'signal' | 'progress'>,
): Promise<{manifest: Manifest; resolution?: Resolution}> {
  const sources = sourceClients(manifest, {...opts, onWarning: (m) => opts.progress.warn(m)})
  return resolveManifest(manifest, {registry: sources.lister})
}

/**
 * Resolve the manifest's selections and plan what a pull would do, reading
 * manifests, small configs, checksum files and file sizes (HEAD), never a
 * layer or a file's body; the store is only read. Fails as pull would on a
 * platform an image lacks.
 */
export async function planPull(given: Manifest, opts: PullOptions): Promise<PullPlan> {
  const sources = sourceClients(given, {...opts, onWarning: (m) => opts.progress.warn(m)})
  for (const w of manifestWarnings(given)) opts.progress.warn(formatProblem(w))
  const {manifest, resolution} = await resolveManifest(given, {registry: sources.lister})
  const store = new Store(opts.store)
  const ctx = {
    store,
    registry: sources.client,
    platforms: opts.platforms && opts.platforms.length > 0 ? opts.platforms : undefined,
    concurrency: opts.concurrency,
    progress: opts.progress,
    caFiles: opts.caFiles ?? [],
    signal: opts.signal,
  }
  const [images, files] = valuesOrFirstFailure(
    await Promise.allSettled([planImages(manifest, ctx), planFiles(manifest, ctx)]),
  ) as [ImagePlan[], FilePlan[]]
  return {
    store: store.root,
    images: images.map((i) => ({kind: 'image' as const, ...i})),
    files,
    osRepositories: manifest.osPackages?.length ?? 0,
    selections: resolution?.selections ?? [],
    repositories: resolution?.repositories ?? [],
  }
}

/**
 * Fetch everything a manifest names into the store: images and files at
 * once, through one download pool, under the store's lock.
 */
export async function pull(given: Manifest, opts: PullOptions): Promise<PullResult> {
  const sources = sourceClients(given, {...opts, onWarning: (m) => opts.progress.warn(m)})
  for (const w of manifestWarnings(given)) opts.progress.warn(formatProblem(w))
  // Selections first: one that matches nothing is an invalid manifest, found before the store is touched.
  const {manifest, resolution} = await resolveManifest(given, {registry: sources.lister})
  const store = new Store(opts.store)
  const release = await store.lock()
  try {
    await store.init()
    const caFiles = opts.caFiles ?? []
    const ctx: PullContext = {
      store,
      pool: pLimit(opts.concurrency),
      concurrency: opts.concurrency,
      progress: opts.progress,
      caFiles,
      platforms: opts.platforms && opts.platforms.length > 0 ? opts.platforms : undefined,
      registry: sources.client,
      lowSpeed: opts.lowSpeed,
      signal: opts.signal,
    }
    // Both halves end before the lock is released, even when one fails.
    const [images, files, os] = valuesOrFirstFailure(
      await Promise.allSettled([pullImages(manifest, ctx), pullFiles(manifest, ctx), pullOsPackages(manifest, ctx)]),
    ) as [ImagePullResult[], FilePullResult[], OsPullResult]
    await mergeRecords(store, {
      name: manifest.name,
      version: manifest.version,
      images: images.map((i) => i.lock satisfies LockImage),
      files: [...files.map((f) => f.lock satisfies LockFile), ...os.files],
      osRepositories: os.repositories,
    })
    return {
      store: store.root,
      images,
      files,
      ...(os.repositories.length > 0
        ? {osPackages: {repositories: os.repositories, packages: os.packages, bytesFetched: os.bytesFetched}}
        : {}),
      ...(resolution ? {selections: resolution.selections, repositories: resolution.repositories} : {}),
    }
  } finally {
    await release()
  }
}
