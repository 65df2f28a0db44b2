import {UsageError} from '../errors.js'
import {isRegistryHost, parseReference, ReferenceError, type ImageReference} from '../oci/reference.js'

/**
 * Where an image of the bundle goes in the target registry:
 * `<registry>/<namespace>/<source path without its registry host>`, or with
 * `keepRegistryHost` the source host as the first path component
 * (`registry/docker.io/library/nginx`), which some installers expect.
 */
export interface TargetOptions {
  /** `HOST[:PORT]` of the target registry. */
  registry: string
  namespace?: string
  keepRegistryHost?: boolean
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/

/** Check `--registry` and `--namespace` once, before anything runs. */
export function checkTargetOptions(opts: TargetOptions): TargetOptions {
  let registry = opts.registry.trim()
  // Users paste URLs; a registry is named by host[:port] only.
  const scheme = /^(https?):\/\//i.exec(registry)
  if (scheme) registry = registry.slice(scheme[0].length)
  registry = registry.replace(/\/+$/, '')
  if (!isRegistryHost(registry)) {
    throw new UsageError(`--registry must be HOST[:PORT], got "${opts.registry}"`, {
      suggestions: ['put the path in --namespace, e.g. --registry registry.local:5000 --namespace mirror'],
    })
  }
  let namespace = opts.namespace?.trim().replace(/^\/+|\/+$/g, '')
  if (namespace === '') namespace = undefined
  if (namespace !== undefined) {
    for (const c of namespace.split('/')) {
      if (!COMPONENT.test(c)) {
        throw new UsageError(`--namespace "${opts.namespace}": bad component "${c}" (lowercase letters, digits and . _ - only)`)
      }
    }
  }
  return {registry, namespace, keepRegistryHost: Boolean(opts.keepRegistryHost)}
}

/**
 * A registry host as a repository path component: lowercase, and a port's
 * `:` (not allowed in a path) becomes `_`, e.g. `127.0.0.1:5001` ->
 * `127.0.0.1_5001`.
 */
export function hostComponent(host: string): string {
  return host.toLowerCase().replace(/^\[|\]$/g, '').replace(/:/g, '_')
}

export interface ImageTarget {
  source: ImageReference
  /** The target repository path inside the target registry. */
  repository: string
  /** `HOST[:PORT]/repository:tag` or `...@digest` when the source names no tag. */
  ref: string
  /** What the manifest is pushed as: the source tag, or the digest. */
  reference: string
}

/** Map one source reference (as in bundle.json) to its target. */
export function targetFor(sourceRef: string, digest: string, options: TargetOptions): ImageTarget {
  let source: ImageReference
  try {
    source = parseReference(sourceRef)
  } catch (err) {
    if (err instanceof ReferenceError) throw new UsageError(`bad image reference "${sourceRef}" in the bundle: ${err.message}`)
    throw err
  }
  const parts: string[] = []
  if (options.namespace) parts.push(options.namespace)
  if (options.keepRegistryHost) parts.push(hostComponent(source.registry))
  parts.push(source.repository)
  const repository = parts.join('/')
  if (repository.length > 255) throw new UsageError(`target repository name longer than 255 characters: ${repository}`)
  const reference = source.tag ?? digest
  const ref = `${options.registry}/${repository}${source.tag ? `:${source.tag}` : `@${digest}`}`
  return {source, repository, ref, reference}
}
