import {UsageError} from '../../errors.js'
import {
  type ImageReference,
  isRegistryHost,
  normalizeRegistryHost,
  parseReference,
  ReferenceError,
} from '../../oci/reference.js'

/**
 * Where an image goes in the target registry, the one mapping that
 * `import registry`, `mirror`, `inventory registry` and a delta's check
 * share: `<registry>/<namespace>/<path>`, where the path is the source path
 * without its registry host (with `keepRegistryHost`, the host as its first
 * component: `registry/docker.io/library/nginx`, which some installers
 * expect); or, where a `--map FROM=TO` rule matches the source
 * (`quay.io/calico` matches `quay.io/calico/node`, never
 * `quay.io/calicoctl`), TO followed by the rest of the source path, the
 * first matching rule winning. Then `--max-path-depth N`: a path (under the
 * namespace) of more than N components keeps its last N-1 and joins the
 * leading ones with `-` into its first (`tools/team/app` at 2 ->
 * `tools-team/app`).
 */
export interface TargetOptions {
  /** `HOST[:PORT]` of the target registry. */
  registry: string
  namespace?: string
  keepRegistryHost?: boolean
  /** `--map` rules, in the order given (parseMapRule reads one). */
  map?: MapRule[]
  maxPathDepth?: number
}

/** One `--map FROM=TO`: FROM a source repository prefix with its registry host, TO what replaces it under the namespace (empty: nothing). */
export interface MapRule {
  from: string
  to: string
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
        throw new UsageError(
          `--namespace "${opts.namespace}": bad component "${c}" (lowercase letters, digits and . _ - only)`,
        )
      }
    }
  }
  const maxPathDepth = opts.maxPathDepth
  if (maxPathDepth !== undefined && (!Number.isInteger(maxPathDepth) || maxPathDepth < 1)) {
    throw new UsageError(`--max-path-depth must be a whole number of 1 or more, got ${maxPathDepth}`)
  }
  const map = (opts.map ?? []).map((r) => checkMapRule(r))
  return {registry, namespace, keepRegistryHost: Boolean(opts.keepRegistryHost), map, maxPathDepth}
}

/** `--map FROM=TO` as the flag gives it. */
export function parseMapRule(text: string): MapRule {
  const eq = text.indexOf('=')
  if (eq < 0) throw new UsageError(`--map ${text}: expected FROM=TO, e.g. --map quay.io/calico=tools/calico`)
  return checkMapRule({from: text.slice(0, eq), to: text.slice(eq + 1)})
}

/** FROM names a registry host and repository components; TO is components (or nothing). Both without surrounding slashes. */
function checkMapRule(rule: MapRule): MapRule {
  const text = `${rule.from}=${rule.to}`
  const from = rule.from.trim().replace(/\/+$/, '')
  const to = rule.to.trim().replace(/^\/+|\/+$/g, '')
  const [host, ...path] = from.split('/')
  if (!looksLikeHost(host) || !isRegistryHost(host)) {
    throw new UsageError(`--map ${text}: FROM must start with the source registry host, as bundle.json names it`, {
      suggestions: [`e.g. --map docker.io/${from}=${to} or --map quay.io/calico=tools/calico`],
    })
  }
  for (const c of path) if (!COMPONENT.test(c)) throw new UsageError(`--map ${text}: bad component "${c}" in FROM`)
  if (to !== '')
    for (const c of to.split('/'))
      if (!COMPONENT.test(c))
        throw new UsageError(`--map ${text}: bad component "${c}" in TO (lowercase letters, digits and . _ - only)`)
  // Docker Hub's other names are docker.io in every reference airlock reads.
  return {from: [normalizeRegistryHost(host), ...path].join('/'), to}
}

/** A first path component that names a registry, as references tell one (a dot, a port, localhost, an IPv6 address). */
function looksLikeHost(s: string): boolean {
  return s.includes('.') || s.includes(':') || s === 'localhost' || s.startsWith('[')
}

/**
 * A registry host as a repository path component: lowercase, and a port's
 * `:` (not allowed in a path) becomes `_`, e.g. `127.0.0.1:5001` ->
 * `127.0.0.1_5001`.
 */
export function hostComponent(host: string): string {
  return host
    .toLowerCase()
    .replace(/^\[|\]$/g, '')
    .replace(/:/g, '_')
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
    if (err instanceof ReferenceError)
      throw new UsageError(`bad image reference "${sourceRef}" in the bundle: ${err.message}`)
    throw err
  }
  const path = limitDepth(mappedPath(source, options), options.maxPathDepth)
  const repository = options.namespace ? (path === '' ? options.namespace : `${options.namespace}/${path}`) : path
  if (repository === '')
    throw new UsageError(`${sourceRef}: --map leaves no repository name; give TO, or a --namespace`)
  if (repository.length > 255) throw new UsageError(`target repository name longer than 255 characters: ${repository}`)
  const reference = source.tag ?? digest
  const ref = `${options.registry}/${repository}${source.tag ? `:${source.tag}` : `@${digest}`}`
  return {source, repository, ref, reference}
}

/** The path under the namespace: the first `--map` rule that matches the source on whole components, else the source path (its host kept when asked). */
function mappedPath(source: ImageReference, options: TargetOptions): string {
  const name = `${source.registry}/${source.repository}`
  for (const rule of options.map ?? []) {
    if (name === rule.from || name.startsWith(`${rule.from}/`)) {
      const rest = name.slice(rule.from.length + 1)
      return [rule.to, rest].filter((s) => s !== '').join('/')
    }
  }
  return options.keepRegistryHost ? `${hostComponent(source.registry)}/${source.repository}` : source.repository
}

/** `--max-path-depth`: past `depth` components, the leading ones are joined with `-` into the first. */
function limitDepth(path: string, depth: number | undefined): string {
  const parts = path.split('/')
  if (depth === undefined || parts.length <= depth) return path
  const keep = depth - 1
  return [parts.slice(0, parts.length - keep).join('-'), ...parts.slice(parts.length - keep)].join('/')
}

/**
 * Every image's target, all known before anything is pushed: two source
 * repositories that would land in one target repository are refused
 * (exit 2), both named. One source repository may of course bring many
 * tags.
 */
export function planTargets(images: {ref: string; digest: string}[], options: TargetOptions): ImageTarget[] {
  const bySource = new Map<string, string>()
  return images.map((img) => {
    const target = targetFor(img.ref, img.digest, options)
    const source = `${target.source.registry}/${target.source.repository}`
    const clash = bySource.get(target.repository)
    if (clash !== undefined && clash !== source) {
      throw new UsageError(`${clash} and ${source} would both land in ${options.registry}/${target.repository}`, {
        suggestions: [
          'give one of them its own --map rule, or keep the source registries apart with --keep-registry-host',
        ],
      })
    }
    bySource.set(target.repository, source)
    return target
  })
}
