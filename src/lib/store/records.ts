import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import type {BundleLock, LockFile, LockImage, LockOsRepository} from '../bundle-json.js'
import {writeFileAtomic} from './atomic.js'
import type {Store} from './store.js'

/**
 * `STORE/records.json`: what pulls put in the store, in bundle.json's shape,
 * so `bundle` can write the lock without the manifest. Entries are merged by
 * image ref and by file path; the latest pull wins.
 */
export function recordsPath(store: Store): string {
  return join(store.root, 'records.json')
}

export async function readRecords(store: Store): Promise<BundleLock | undefined> {
  try {
    return JSON.parse(await readFile(recordsPath(store), 'utf8')) as BundleLock
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

export async function mergeRecords(
  store: Store,
  update: {
    name: string
    version?: string
    images?: LockImage[]
    files?: LockFile[]
    osRepositories?: LockOsRepository[]
  },
): Promise<BundleLock> {
  const prev = await readRecords(store)
  const images = new Map((prev?.images ?? []).map((i) => [i.ref, i]))
  for (const i of update.images ?? []) images.set(i.ref, i)
  const files = new Map((prev?.files ?? []).map((f) => [`${f.kind === 'binary' ? 'files' : 'packages'}/${f.path}`, f]))
  for (const f of update.files ?? []) files.set(`${f.kind === 'binary' ? 'files' : 'packages'}/${f.path}`, f)
  const repos = new Map((prev?.osRepositories ?? []).map((r) => [osRepositoryKey(r), r]))
  for (const r of update.osRepositories ?? []) repos.set(osRepositoryKey(r), r)
  const lock: BundleLock = {
    apiVersion: 'airlock/v1',
    name: update.name,
    ...(update.version === undefined ? {} : {version: update.version}),
    images: [...images.values()].sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0)),
    files: [...files.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    ...(repos.size > 0
      ? {osRepositories: [...repos.values()].sort((a, b) => cmp(osRepositoryKey(a), osRepositoryKey(b)))}
      : {}),
  }
  await writeFileAtomic(recordsPath(store), `${JSON.stringify(lock, null, 2)}\n`)
  return lock
}

/** One OS repository record per type, URL and suites: a later pull of the same entry replaces it. */
export function osRepositoryKey(r: Pick<LockOsRepository, 'type' | 'url' | 'suites'>): string {
  return `${r.type} ${r.url} ${(r.suites ?? []).join(',')}`
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}
