/**
 * Image references, normalized as Docker does: `nginx` is
 * `docker.io/library/nginx:latest`, reached at `registry-1.docker.io`.
 */
export interface ImageReference {
  /** Registry as users name it: `docker.io`, `registry.k8s.io`, `127.0.0.1:5001`. */
  registry: string
  /** Repository path: `library/nginx`. */
  repository: string
  tag?: string
  /** `sha256:<hex>` when the reference pins one. */
  digest?: string
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/
const DIGEST = /^sha256:[a-f0-9]{64}$/
const REGISTRY_HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/

export class ReferenceError extends Error {}

/** Parse and normalize; throws ReferenceError with a reason a user can act on. */
export function parseReference(input: string): ImageReference {
  const s = input.trim()
  if (s === '') throw new ReferenceError('empty image reference')
  if (s !== input) throw new ReferenceError('image reference has surrounding spaces')
  let rest = s
  let digest: string | undefined
  const at = rest.indexOf('@')
  if (at >= 0) {
    digest = rest.slice(at + 1)
    rest = rest.slice(0, at)
    if (!DIGEST.test(digest))
      throw new ReferenceError(`bad digest "${digest}": expected sha256: and 64 lowercase hex digits`)
  }
  let tag: string | undefined
  const lastSlash = rest.lastIndexOf('/')
  const colon = rest.lastIndexOf(':')
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1)
    rest = rest.slice(0, colon)
    if (!TAG.test(tag)) throw new ReferenceError(`bad tag "${tag}"`)
  }
  const parts = rest.split('/')
  let registry = 'docker.io'
  if (
    parts.length > 1 &&
    (parts[0].includes('.') || parts[0].includes(':') || parts[0] === 'localhost' || parts[0].startsWith('['))
  ) {
    registry = parts.shift()!
    if (!isRegistryHost(registry)) throw new ReferenceError(`bad registry host "${registry}"`)
  }
  registry = normalizeRegistryHost(registry)
  if (parts.length === 0 || parts.some((p) => p === '')) throw new ReferenceError(`bad repository path in "${input}"`)
  for (const p of parts) {
    if (!COMPONENT.test(p))
      throw new ReferenceError(`bad repository name component "${p}" (lowercase letters, digits and . _ - only)`)
  }
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library')
  const repository = parts.join('/')
  if (repository.length > 255) throw new ReferenceError('repository name longer than 255 characters')
  if (!tag && !digest) tag = 'latest'
  return {registry, repository, tag, digest}
}

/** `host`, `host:port`, `[v6]:port`: a registry host as a reference, `--registry` or a mirror key names it. */
export function isRegistryHost(s: string): boolean {
  return REGISTRY_HOST.test(s)
}

/** Docker Hub's other names (`index.docker.io`, `registry-1.docker.io`, any case) as references name it: `docker.io`; any other host unchanged. */
export function normalizeRegistryHost(host: string): string {
  const lower = host.toLowerCase()
  return lower === 'index.docker.io' || lower === 'registry-1.docker.io' ? 'docker.io' : host
}

/** `docker.io/library/nginx:1.25.3`, `registry.k8s.io/pause:3.9@sha256:...`. */
export function formatReference(ref: ImageReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`
}

/** Where a registry is reached: Docker Hub's name is not its API host. */
export function registryEndpointHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry
}

/** localhost, 127.0.0.0/8 and ::1 may fall back to plain HTTP, as Docker allows. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.replace(/:\d+$/, '').replace(/^\[|\]$/g, '')
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}
