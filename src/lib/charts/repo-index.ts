import type {Got} from 'got'
import {parse} from 'yaml'

import {FailureError} from '../errors.js'
import {redactUrl} from '../fetch/http.js'
import type {RetryPolicy} from '../fetch/retry.js'
import {fetchSmall} from '../fetch/small.js'
import {compareVersions} from './version.js'

/** Large public repositories publish indexes of tens of megabytes. */
const MAX_INDEX_BYTES = 256 * 1024 * 1024

/** One chart version in a Helm repository index; other Chart.yaml fields ride along. */
export interface ChartVersion {
  name: string
  version: string
  urls: string[]
  digest?: string
  created?: string
  apiVersion?: string
  [field: string]: unknown
}

/** A Helm repository's `index.yaml`. */
export interface RepoIndex {
  apiVersion: string
  entries: Record<string, ChartVersion[]>
  generated?: string
  [field: string]: unknown
}

/** `<repo>/index.yaml`, whether or not the repository URL ends with `/`. */
export function indexUrl(repo: string): string {
  const u = new URL(repo)
  if (!u.pathname.endsWith('/')) u.pathname += '/'
  return new URL('index.yaml', u).toString()
}

/** A chart URL from the index, resolved against the repository URL when relative (as Helm does). */
export function chartUrl(repo: string, url: string): string {
  const base = new URL(repo)
  if (!base.pathname.endsWith('/')) base.pathname += '/'
  return new URL(url, base).toString()
}

/** Parse and check an index.yaml; `source` names it in errors. */
export function parseRepoIndex(text: string, source: string): RepoIndex {
  let doc: unknown
  try {
    // Numbers stay strings: a version `1.10` or an all-digit digest must not turn into a float.
    doc = parse(text, {
      customTags: (tags) => tags.filter((t) => !/:(int|float)$/.test(typeof t === 'string' ? t : t.tag)),
    })
  } catch (err) {
    throw new FailureError(`${source} is not valid YAML: ${(err as Error).message.split('\n')[0]}`)
  }
  const d = doc as Partial<RepoIndex> | null
  if (!d || typeof d !== 'object' || !d.entries || typeof d.entries !== 'object' || Array.isArray(d.entries)) {
    throw new FailureError(`${source} is not a Helm repository index (no entries map)`)
  }
  for (const [name, list] of Object.entries(d.entries)) {
    if (!Array.isArray(list)) throw new FailureError(`${source}: entries.${name} is not a list`)
  }
  return {...d, apiVersion: String(d.apiVersion ?? 'v1'), entries: d.entries} as RepoIndex
}

export interface FoundChart {
  entry: ChartVersion
  /** Absolute URL of the .tgz. */
  url: string
  /** `sha256:<hex>` from the index. */
  digest: string
}

/**
 * Chart `name` at `version` in a repository index, with its absolute URL and
 * digest. A missing chart or version lists what the repository has.
 */
export function findChart(index: RepoIndex, repo: string, name: string, version: string): FoundChart {
  const where = redactUrl(repo)
  const list = index.entries[name]
  if (!list || list.length === 0) {
    const names = Object.keys(index.entries).sort()
    throw new FailureError(`chart ${name} is not in the repository ${where}`, {
      details: [names.length === 0 ? 'the repository lists no charts' : `it has: ${listSome(names)}`],
    })
  }
  const strip = (v: string) => v.replace(/^v/, '')
  const entry =
    list.find((e) => String(e.version) === version) ?? list.find((e) => strip(String(e.version)) === strip(version))
  if (!entry) {
    const versions = [...new Set(list.map((e) => String(e.version)))].sort((a, b) => compareVersions(b, a))
    throw new FailureError(`chart ${name} has no version ${version} in the repository ${where}`, {
      details: [`available versions: ${listSome(versions)}`],
    })
  }
  const urls = Array.isArray(entry.urls) ? entry.urls.filter((u) => typeof u === 'string' && u !== '') : []
  if (urls.length === 0)
    throw new FailureError(`chart ${name} ${version} in ${where} has no download URL in index.yaml`)
  const digest = typeof entry.digest === 'string' ? entry.digest.replace(/^sha256:/, '').toLowerCase() : ''
  if (!/^[a-f0-9]{64}$/.test(digest)) {
    throw new FailureError(
      `chart ${name} ${version} in ${where} has no sha256 digest in index.yaml, so it cannot be verified`,
    )
  }
  return {entry: {...entry, version: String(entry.version)}, url: chartUrl(repo, urls[0]), digest: `sha256:${digest}`}
}

function listSome(items: string[], max = 30): string {
  return items.length > max ? `${items.slice(0, max).join(', ')}, and ${items.length - max} more` : items.join(', ')
}

/** Each repository's index.yaml is fetched once per run, however many charts come from it. */
export class RepoIndexCache {
  private readonly indexes = new Map<string, Promise<RepoIndex>>()

  constructor(private readonly opts: {http: Got; policy?: RetryPolicy; signal?: AbortSignal}) {}

  get(repo: string): Promise<RepoIndex> {
    const url = indexUrl(repo)
    let p = this.indexes.get(url)
    if (!p) {
      p = this.load(url)
      this.indexes.set(url, p)
    }
    return p
  }

  private async load(url: string): Promise<RepoIndex> {
    const source = `Helm repository index ${redactUrl(url)}`
    const body = await fetchSmall(this.opts.http, url, {
      what: source,
      maxBytes: MAX_INDEX_BYTES,
      policy: this.opts.policy,
      signal: this.opts.signal,
    })
    return parseRepoIndex(body.toString('utf8'), source)
  }
}
