import {parseOciChartRef} from '../charts/oci.js'
import {UsageError} from '../errors.js'
import type {ConnectionOptions} from '../fetch/tls.js'
import type {Manifest} from '../manifest/types.js'
import {RegistryClient} from '../registry/client.js'
import type {SelectionRegistry} from './resolve.js'

/** `caFiles`: the `--ca-file` values, trusted for every host on top of the system CAs. */
export interface SourceClientOptions extends Pick<ConnectionOptions, 'caFiles'> {
  username?: string
  password?: string
  signal?: AbortSignal
  onWarning?: (message: string) => void
}

/**
 * The registries a manifest reads from: one client per host for the whole
 * run (images, selections and OCI charts share its connections and tokens),
 * set up from the manifest's `spec.registries`, `--ca-file` and the
 * credentials flags.
 */
export interface SourceClients {
  client(host: string): RegistryClient
  /** The same client, as what resolving a selection needs. */
  lister(host: string): SelectionRegistry
}

export function sourceClients(manifest: Manifest, opts: SourceClientOptions): SourceClients {
  const loginHost = credentialsHost(manifest, opts)
  const caFiles = opts.caFiles ?? []
  const clients = new Map<string, RegistryClient>()
  const client = (host: string): RegistryClient => {
    let c = clients.get(host)
    if (!c) {
      const settings = manifest.registries.find((r) => r.host === host)
      c = new RegistryClient({
        registry: host,
        insecure: settings?.insecure,
        caFiles: [...caFiles, ...(settings?.caFile ? [settings.caFile] : [])],
        credentials: host === loginHost ? {username: opts.username!, password: opts.password ?? ''} : undefined,
        signal: opts.signal,
        onWarning: opts.onWarning,
      })
      clients.set(host, c)
    }
    return c
  }
  return {
    client,
    lister: (host) => ({
      listTags: (repository) => client(host).listTags(repository),
      catalog: () => client(host).catalog(),
    }),
  }
}

/**
 * The one registry host that --username/--password are for, so they never
 * reach another registry or its token service: the host in spec.registries
 * when it names one, else the only registry the manifest pulls from.
 */
function credentialsHost(manifest: Manifest, opts: SourceClientOptions): string | undefined {
  if (opts.username === undefined) return undefined
  const listed = manifest.registries.map((r) => r.host)
  const used = new Set(manifest.images.map((i) => i.ref.registry))
  for (const s of manifest.selections ?? []) used.add(s.registry)
  for (const r of manifest.repositories ?? []) used.add(r.registry)
  for (const p of manifest.packages) if (p.kind === 'chart' && p.ociRef) used.add(parseOciChartRef(p.ociRef).registry)
  const candidates = listed.length > 0 ? listed : [...used]
  if (candidates.length === 1) return candidates[0]
  throw new UsageError(
    `--username/--password: the manifest names ${candidates.length === 0 ? 'no registry' : `several registries (${candidates.join(', ')})`}; ` +
      'list the one these credentials are for, alone, in spec.registries, and keep the others in the Docker config',
  )
}
