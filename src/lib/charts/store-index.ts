import {access, readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {stringify} from 'yaml'

import {writeFileAtomic} from '../store/atomic.js'
import type {Store} from '../store/store.js'
import {type ChartVersion, parseRepoIndex, type RepoIndex} from './repo-index.js'
import {compareVersions} from './version.js'

/** A chart now in `STORE/packages/charts/`, with its metadata from the source repository. */
export interface StoredChart {
  /** The source index entry (or Chart.yaml fields for an OCI chart); name and version at least. */
  entry: ChartVersion
  /** `sha256:<hex>` of the .tgz. */
  digest: string
}

/** The .tgz's name beside index.yaml, as chartPath() names it. */
export function chartFileName(name: string, version: string): string {
  return `${name}-${version}.tgz`
}

export function chartsDir(store: Store): string {
  return join(store.packages, 'charts')
}

/** When a chart entered the store: SOURCE_DATE_EPOCH when set (reproducible builds), else now. */
export function creationTime(env: NodeJS.ProcessEnv = process.env, now = new Date()): string {
  const epoch = Number(env.SOURCE_DATE_EPOCH)
  return (env.SOURCE_DATE_EPOCH && Number.isFinite(epoch) ? new Date(epoch * 1000) : now).toISOString()
}

/**
 * The store's chart index: `prev` (what index.yaml listed) minus the charts
 * whose file is gone, plus `added`, replacing the same name and version.
 * An unchanged chart keeps its `created`, and `generated` is the newest
 * `created`, so pulling the same charts again writes the same bytes.
 */
export function mergeStoreIndex(
  prev: RepoIndex | undefined,
  added: StoredChart[],
  opts: {created: string; present: (fileName: string) => boolean},
): RepoIndex {
  const byKey = new Map<string, ChartVersion>()
  for (const [name, list] of Object.entries(prev?.entries ?? {})) {
    for (const e of list) {
      const file = e.urls?.[0]
      if (typeof file !== 'string' || !opts.present(file)) continue
      byKey.set(`${name}\0${e.version}`, {...e, name})
    }
  }
  for (const c of added) {
    const {name} = c.entry
    const version = String(c.entry.version)
    const key = `${name}\0${version}`
    const old = byKey.get(key)
    const hex = c.digest.replace(/^sha256:/, '')
    const created = old && old.digest === hex && typeof old.created === 'string' ? old.created : opts.created
    const {urls: _u, digest: _d, created: _c, ...meta} = c.entry
    byKey.set(key, {...meta, name, version, created, digest: hex, urls: [chartFileName(name, version)]})
  }
  const entries: Record<string, ChartVersion[]> = {}
  for (const e of [...byKey.values()].sort(
    (a, b) => a.name.localeCompare(b.name) || compareVersions(b.version, a.version),
  )) {
    ;(entries[e.name] ??= []).push(e)
  }
  const times = [...byKey.values()]
    .map((e) => String(e.created ?? ''))
    .filter(Boolean)
    .sort()
  return {apiVersion: 'v1', entries, generated: times.at(-1) ?? opts.created}
}

/** Read the store's charts/index.yaml, if there is a usable one. */
export async function readStoreIndex(store: Store): Promise<RepoIndex | undefined> {
  const file = join(chartsDir(store), 'index.yaml')
  let text: string
  try {
    text = await readFile(file, 'utf8')
  } catch {
    return undefined
  }
  try {
    return parseRepoIndex(text, file)
  } catch {
    // A damaged index is rebuilt from what this run pulls rather than failing the pull.
    return undefined
  }
}

/**
 * Write `STORE/packages/charts/index.yaml`, a Helm repository index of the
 * charts in the store (so the imported folder is a chart repository).
 */
export async function writeStoreIndex(
  store: Store,
  added: StoredChart[],
  created = creationTime(),
): Promise<RepoIndex> {
  const dir = chartsDir(store)
  const prev = await readStoreIndex(store)
  const present = new Set<string>()
  for (const list of Object.values(prev?.entries ?? {})) {
    for (const e of list) {
      const f = e.urls?.[0]
      if (typeof f === 'string' && !f.includes('/') && (await exists(join(dir, f)))) present.add(f)
    }
  }
  const index = mergeStoreIndex(prev, added, {created, present: (f) => present.has(f)})
  const text = stringify(index, {lineWidth: 0})
  const file = join(dir, 'index.yaml')
  const old = await readFile(file, 'utf8').catch(() => undefined)
  if (old !== text) await writeFileAtomic(file, text)
  return index
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p)
    return true
  } catch {
    return false
  }
}
