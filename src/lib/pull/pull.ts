import pLimit from 'p-limit'

import type {LockFile, LockImage} from '../bundle/lock.js'
import type {Manifest} from '../manifest/types.js'
import {RegistryClient} from '../registry/client.js'
import {mergeRecords} from '../store/records.js'
import {Store} from '../store/store.js'
import type {Progress} from '../ui/progress.js'
import type {PullContext} from './context.js'
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
          credentials: opts.username === undefined ? undefined : {username: opts.username, password: opts.password ?? ''},
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
      signal: opts.signal,
    }
    const [images, files] = await Promise.all([pullImages(manifest, ctx), pullFiles(manifest, ctx)])
    await mergeRecords(store, {
      name: manifest.name,
      version: manifest.version,
      images: images.map((i) => i.lock satisfies LockImage),
      files: files.map((f) => f.lock satisfies LockFile),
    })
    await store.cleanTmp()
    return {store: store.root, images, files}
  } finally {
    await release()
  }
}
