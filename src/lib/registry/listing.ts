import {RegistryError} from '../errors.js'
import type {RegistryClient} from './client.js'

/** Pages followed at most, so a registry whose Link loops cannot keep a run going. */
const MAX_PAGES = 10_000

/** The `rel="next"` target of a Link header, if any. */
export function nextLink(header: string | string[] | undefined): string | undefined {
  for (const h of Array.isArray(header) ? header : header ? [header] : []) {
    for (const part of h.split(/,(?=\s*<)/)) {
      const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part)
      if (m && /(?:^|;)\s*rel="?next"?\s*(?:;|$)/i.test(m[2])) return m[1]
    }
  }
  return undefined
}

/**
 * GET a paginated list (`tags/list`, `_catalog`) to its last page, following
 * `Link: <...>; rel="next"` as the distribution spec and Docker Hub, GHCR
 * and Harbor give it (their pages carry `n` and `last`).
 */
async function readPages(client: RegistryClient, first: string, field: 'tags' | 'repositories', what: string, repository?: string): Promise<string[]> {
  const out: string[] = []
  const seen = new Set<string>()
  let path: string | undefined = first
  for (let page = 0; path !== undefined; page++) {
    if (page >= MAX_PAGES || seen.has(path)) {
      throw new RegistryError(`${client.registry}: ${what}: the registry's pages do not end (page ${page + 1} is ${path})`, {host: client.host, repository})
    }
    seen.add(path)
    const res = await client.request({path, repository, what})
    let body: Record<string, unknown>
    try {
      body = JSON.parse(res.body.toString('utf8')) as Record<string, unknown>
    } catch {
      throw new RegistryError(`${client.registry}: ${what}: the answer is not JSON`, {host: client.host, status: res.status, repository})
    }
    const list = body[field]
    if (list !== null && list !== undefined && !(Array.isArray(list) && list.every((t) => typeof t === 'string'))) {
      throw new RegistryError(`${client.registry}: ${what}: "${field}" is not a list of names`, {host: client.host, status: res.status, repository})
    }
    out.push(...((list as string[] | null) ?? []))
    const next = nextLink(res.headers.link)
    // Relative links are resolved against the URL that answered.
    path = next === undefined ? undefined : new URL(next, res.url).toString()
  }
  return [...new Set(out)]
}

/** Every tag of a repository, through every page. */
export function listTags(client: RegistryClient, repository: string): Promise<string[]> {
  return readPages(client, `/v2/${repository}/tags/list`, 'tags', `the tags of ${client.registry}/${repository}`, repository)
}

/** Every repository the registry's catalog lists, through every page. */
export function catalog(client: RegistryClient): Promise<string[]> {
  return readPages(client, '/v2/_catalog', 'repositories', `the catalog of ${client.registry}`, undefined)
}
