import {mkdir} from 'node:fs/promises'
import {dirname, join} from 'node:path'

import type {ConnectionOptions} from '../fetch/tls.js'
import {registryEndpointHost} from '../oci/reference.js'
import {writeFileAtomic} from '../store/atomic.js'

/**
 * What nodes need to keep pulling images by their original names from where
 * they went (`--mirror-config DIR`), one file per runtime family, each
 * covering every source registry:
 * - `containerd/certs.d/<source host>/hosts.toml`: containerd's hosts folder
 *   (`config_path`, or `ctr --hosts-dir`); a common path before the source
 *   path through `override_path`, but no renaming of a repository;
 * - `registries.conf`: containers-registries.conf v2 (podman, CRI-O,
 *   skopeo), a `[[registry]]` per source registry and per renamed
 *   repository, the longest prefix winning;
 * - `registries.yaml`: k3s and RKE2, the target as each source's mirror
 *   endpoint and `rewrite` rules (Go regexp) for the paths.
 */

/** One source repository and the target repository path it went to. */
export interface MirroredName {
  /** Source registry as references name it (`docker.io`, `quay.io`, `127.0.0.1:5001`). */
  registry: string
  /** Source repository path (`library/nginx`). */
  repository: string
  /** Repository path in the target (`mirror/library/nginx`). */
  target: string
}

/** Where nodes pull from. */
export interface MirrorEndpoint {
  /** `http://host:port` or `https://host[:port]`, no path. */
  url: string
  /** TLS not verified (`--insecure` against an HTTPS target). */
  skipVerify?: boolean
  /** The target's certificate needs a CA the nodes must be given (`--ca-file`). */
  privateCa?: boolean
}

export interface MirrorConfigFile {
  /** Path relative to the config folder. */
  path: string
  content: string
}

export interface MirrorConfig {
  files: MirrorConfigFile[]
  /** Source repositories (`registry/repository`) a containerd node cannot find by their original names, with their targets. */
  containerdMisses: {source: string; target: string}[]
}

/** The containerd hosts folder inside the config folder. */
export const CONTAINERD_HOSTS_DIR = 'containerd/certs.d'

/** One source registry: the path put before every source path (the one most of its repositories share), and the repositories that do not fit it. */
interface RegistryPlan {
  registry: string
  prefix: string
  names: MirroredName[]
  renamed: MirroredName[]
}

function planRegistries(names: MirroredName[]): RegistryPlan[] {
  const byRegistry = new Map<string, Map<string, MirroredName>>()
  for (const n of names) {
    const repos = byRegistry.get(n.registry) ?? new Map<string, MirroredName>()
    repos.set(n.repository, n)
    byRegistry.set(n.registry, repos)
  }
  return [...byRegistry.keys()].sort().map((registry) => {
    const list = [...byRegistry.get(registry)!.values()].sort((a, b) => (a.repository < b.repository ? -1 : 1))
    const counts = new Map<string, number>()
    for (const n of list) {
      const p = prefixOf(n)
      if (p !== undefined) counts.set(p, (counts.get(p) ?? 0) + 1)
    }
    let prefix = ''
    let best = 0
    for (const [p, c] of counts) if (c > best) [prefix, best] = [p, c]
    return {registry, prefix, names: list, renamed: list.filter((n) => n.target !== joinPath(prefix, n.repository))}
  })
}

/** The path before the source path in the target, when the target ends with the whole source path. */
function prefixOf(n: MirroredName): string | undefined {
  if (n.target === n.repository) return ''
  return n.target.endsWith(`/${n.repository}`) ? n.target.slice(0, -n.repository.length - 1) : undefined
}

const joinPath = (prefix: string, path: string): string => (prefix === '' ? path : `${prefix}/${path}`)
const hostOf = (url: string): string => url.replace(/^https?:\/\//, '')
const q = (s: string): string => JSON.stringify(s)

/**
 * One containerd `hosts.toml`: `server` is the source registry itself
 * (Docker Hub at its API host), the target the first host tried, for pulls
 * and tag resolution; a prefix goes into the host's path with
 * `override_path`. `serve --print-mirror-config` prints the same text.
 */
export function containerdHostsToml(
  registry: string,
  endpoint: MirrorEndpoint,
  prefix = '',
  comments: string[] = [],
): string {
  const host = prefix === '' ? endpoint.url : `${endpoint.url}/v2/${prefix}`
  return [
    ...comments.map((c) => `# ${c}`.trimEnd()),
    ...(comments.length > 0 ? [''] : []),
    `server = ${q(`https://${registryEndpointHost(registry)}`)}`,
    '',
    `[host.${q(host)}]`,
    '  capabilities = ["pull", "resolve"]',
    ...(prefix === '' ? [] : ['  override_path = true']),
    ...(endpoint.skipVerify ? ['  skip_verify = true'] : []),
    '',
  ].join('\n')
}

const renamedLines = (list: MirroredName[], host: string): string[] =>
  list.map((n) => `  ${n.registry}/${n.repository} -> ${host}/${n.target}`)

/** The three files for `names` pulled from `endpoint`; `by` names the command, for the files' first comment. */
export function mirrorConfig(names: MirroredName[], endpoint: MirrorEndpoint, by: string): MirrorConfig {
  const plans = planRegistries(names)
  const host = hostOf(endpoint.url)
  const plain = endpoint.url.startsWith('http://')
  const caNote =
    endpoint.privateCa && !endpoint.skipVerify
      ? ["TLS: the nodes must trust the CA of the registry's certificate (see docs/registry-targets.md)."]
      : []
  const files: MirrorConfigFile[] = []
  const containerdMisses: {source: string; target: string}[] = []

  for (const p of plans) {
    const comments: string[] = []
    if (p.renamed.length > 0) {
      comments.push(
        `Written by ${by}. containerd cannot rename a repository: these images are NOT found by their original names`,
        'through this file (pull them by their target names, or use registries.conf / registries.yaml):',
        ...renamedLines(p.renamed, host),
      )
      for (const n of p.renamed)
        containerdMisses.push({source: `${n.registry}/${n.repository}`, target: `${host}/${n.target}`})
    }
    if (caNote.length > 0) comments.push(...caNote)
    files.push({
      path: `${CONTAINERD_HOSTS_DIR}/${p.registry}/hosts.toml`,
      content: containerdHostsToml(p.registry, endpoint, p.prefix, comments),
    })
  }

  const conf: string[] = [
    `# Written by ${by}: the bundle's images by their original names, from ${host}.`,
    '# containers-registries.conf v2 (podman, CRI-O, skopeo): /etc/containers/registries.conf,',
    '# or a file under /etc/containers/registries.conf.d/. The longest matching prefix wins.',
    ...caNote.map((c) => `# ${c}`),
  ]
  const entry = (prefix: string, location: string): void => {
    conf.push('', '[[registry]]', `prefix = ${q(prefix)}`, `location = ${q(location)}`)
    if (plain || endpoint.skipVerify) conf.push('insecure = true')
  }
  for (const p of plans) {
    entry(p.registry, joinPath(host, p.prefix))
    for (const n of p.renamed) entry(`${n.registry}/${n.repository}`, `${host}/${n.target}`)
  }
  files.push({path: 'registries.conf', content: `${conf.join('\n')}\n`})

  const yaml: string[] = [
    `# Written by ${by}: the bundle's images by their original names, from ${host}.`,
    '# k3s: /etc/rancher/k3s/registries.yaml; RKE2: /etc/rancher/rke2/registries.yaml (restart the service).',
    '# rewrite: Go regular expressions on the repository path, one rule per path (rules never overlap).',
    ...caNote.map((c) => `# ${c}`),
    'mirrors:',
  ]
  for (const p of plans) {
    yaml.push(`  ${q(p.registry)}:`, '    endpoint:', `      - ${q(endpoint.url)}`)
    // k3s tries rewrites in no fixed order and takes the first that changes the path: every rule must match alone.
    if (p.renamed.length > 0) {
      yaml.push('    rewrite:')
      for (const n of p.names) yaml.push(`      ${q(`^${escapeRegExp(n.repository)}$`)}: ${q(n.target)}`)
    } else if (p.prefix !== '') {
      yaml.push('    rewrite:', `      "^(.*)$": ${q(`${p.prefix}/$1`)}`)
    }
  }
  if (endpoint.skipVerify) yaml.push('configs:', `  ${q(host)}:`, '    tls:', '      insecure_skip_verify: true')
  files.push({path: 'registries.yaml', content: `${yaml.join('\n')}\n`})

  return {files, containerdMisses}
}

/** A literal in a Go (RE2) regular expression. */
function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

/** The warning for what containerd's file cannot express, or none. */
export function containerdMissWarning(config: MirrorConfig, dir: string): string | undefined {
  const m = config.containerdMisses
  if (m.length === 0) return undefined
  return (
    `${join(dir, CONTAINERD_HOSTS_DIR)}: containerd cannot rename a repository, so a containerd node does not find ${m.length} image repositor${m.length === 1 ? 'y' : 'ies'} by the original name: ` +
    `${m.map((x) => `${x.source} (at ${x.target})`).join(', ')}; registries.conf and registries.yaml cover them`
  )
}

/** Write the files under `dir` (each renamed into place whole); returns their paths. */
export async function writeMirrorConfig(dir: string, config: MirrorConfig): Promise<string[]> {
  const written: string[] = []
  for (const f of config.files) {
    const path = join(dir, f.path)
    await mkdir(dirname(path), {recursive: true})
    await writeFileAtomic(path, f.content)
    written.push(path)
  }
  return written
}

/** What an import or a mirror knows of the target: its URL as the client reached it, and how its TLS was trusted. */
export interface PushedTarget extends ConnectionOptions {
  url: string
}

/**
 * `--mirror-config DIR` after a push (`import registry`, `mirror`): the
 * files for every image's source repository and the target repository it
 * went to; the containerd warning goes to `warn`.
 */
export async function writePushedMirrorConfig(
  dir: string,
  targets: {source: {registry: string; repository: string}; repository: string}[],
  target: PushedTarget,
  by: string,
  warn: (message: string) => void,
): Promise<string[]> {
  const https = target.url.startsWith('https://')
  const endpoint: MirrorEndpoint = {
    url: target.url,
    skipVerify: https && Boolean(target.insecure),
    privateCa: https && (target.caFiles?.length ?? 0) > 0,
  }
  const config = mirrorConfig(
    targets.map((t) => ({registry: t.source.registry, repository: t.source.repository, target: t.repository})),
    endpoint,
    by,
  )
  const warning = containerdMissWarning(config, dir)
  if (warning) warn(warning)
  return writeMirrorConfig(dir, config)
}
