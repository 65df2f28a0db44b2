import type {BundleLock} from '../bundle-json.js'
import {UsageError} from '../errors.js'
import {containerdHostsToml, type MirroredName} from '../mirror-config/mirror-config.js'
import {parseReference} from '../oci/reference.js'

/** What `--print-mirror-config` can write. */
export const MIRROR_CONFIG_KINDS = ['containerd'] as const
export type MirrorConfigKind = (typeof MIRROR_CONFIG_KINDS)[number]

export interface MirrorConfigFile {
  /** Source registry, as the bundle's references name it (`docker.io`, `127.0.0.1:5001`). */
  registry: string
  /** Path relative to containerd's hosts folder (`config_path`, e.g. /etc/containerd/certs.d). */
  path: string
  content: string
}

/** Check `--advertise`: an http(s) URL of a host, no path (containerd appends `/v2/`). */
export function checkAdvertiseUrl(url: string): string {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new UsageError(`--advertise must be a URL such as http://seed.example:5000, got "${url}"`)
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new UsageError(`--advertise must be an http:// or https:// URL, got "${url}"`)
  if ((u.pathname !== '/' && u.pathname !== '') || u.search || u.hash || u.username || u.password) {
    throw new UsageError(`--advertise names the server only (scheme, host, port), got "${url}"`)
  }
  return `${u.protocol}//${u.host}`
}

/**
 * One containerd `hosts.toml` per source registry: `server` is the
 * registry itself (Docker Hub at its API host), and the served bundle the
 * first host tried, for pulls and tag resolution. containerd then asks the
 * mirror for `/v2/<repository path>/...?ns=<registry>`, which the server
 * answers from the bundle.
 */
export function containerdHostsFiles(registries: string[], url: string): MirrorConfigFile[] {
  return [...new Set(registries)].sort().map((registry) => ({
    registry,
    path: `${registry}/hosts.toml`,
    content: containerdHostsToml(registry, {url}),
  }))
}

/** The registries the bundle's images come from, as their references name them. */
export function sourceRegistries(lock: BundleLock): string[] {
  return [...new Set(lock.images.map((i) => parseReference(i.ref).registry))].sort()
}

/** Each image's source repository and where the server answers it (its path without the host): what `serve --mirror-config` points nodes at. */
export function servedNames(lock: BundleLock): MirroredName[] {
  return lock.images.map((i) => {
    const ref = parseReference(i.ref)
    return {registry: ref.registry, repository: ref.repository, target: ref.repository}
  })
}
