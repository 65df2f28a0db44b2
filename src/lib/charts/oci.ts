import type {ImageManifest} from '../content/descriptor.js'
import type {Opener} from '../content/opener.js'
import {FailureError} from '../errors.js'
import type {RegistryClient} from '../registry/client.js'
import type {ChartVersion} from './repo-index.js'

export const HELM_CHART_LAYER = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip'
export const HELM_CONFIG = 'application/vnd.cncf.helm.config.v1+json'
// Charts pushed by early Helm 3 releases.
const LEGACY_CHART_LAYER = 'application/tar+gzip'
const MAX_CONFIG = 1024 * 1024

/** `oci://host/repo/path` -> registry host and repository. */
export function parseOciChartRef(ref: string): {registry: string; repository: string} {
  const rest = ref.replace(/^oci:\/\//, '')
  const slash = rest.indexOf('/')
  if (!ref.startsWith('oci://') || slash <= 0) throw new FailureError(`not an oci:// chart reference: ${ref}`)
  return {registry: rest.slice(0, slash), repository: rest.slice(slash + 1)}
}

/** Helm stores version `1.2.3+meta` under the tag `1.2.3_meta` (tags cannot hold `+`). */
export function ociChartTag(version: string): string {
  return version.replace(/\+/g, '_')
}

export interface OciChart {
  /** `sha256:<hex>` and size of the chart's .tgz layer. */
  digest: string
  size: number
  open: Opener
  /** Chart.yaml fields from the config blob, for the store's index.yaml. */
  entry: ChartVersion
  /** `oci://host/repo:tag`, for records. */
  url: string
}

/**
 * Locate a chart pushed with `helm push`: the manifest tagged with its
 * version, whose one chart layer is the .tgz that Helm would download.
 */
export async function resolveOciChart(
  client: RegistryClient,
  ref: string,
  name: string,
  version: string,
): Promise<OciChart> {
  const {registry, repository} = parseOciChartRef(ref)
  const tag = ociChartTag(version)
  const fetched = await client.getManifest(repository, tag)
  let m: ImageManifest
  try {
    m = JSON.parse(fetched.bytes.toString('utf8')) as ImageManifest
  } catch {
    throw new FailureError(`${ref}:${tag} is not an OCI manifest`)
  }
  const layers = Array.isArray(m.layers) ? m.layers : []
  const layer =
    layers.find((l) => l.mediaType === HELM_CHART_LAYER) ?? layers.find((l) => l.mediaType === LEGACY_CHART_LAYER)
  if (!layer) {
    throw new FailureError(`${ref}:${tag} is not a Helm chart: no ${HELM_CHART_LAYER} layer`, {
      details: [`its layers: ${layers.map((l) => l.mediaType).join(', ') || 'none'}`],
    })
  }
  let meta: Record<string, unknown> = {}
  if (m.config?.mediaType === HELM_CONFIG && m.config.size <= MAX_CONFIG) {
    meta = await readConfig(client, repository, m.config).catch(() => ({}))
  }
  const entry: ChartVersion = {...meta, name, version, urls: []}
  return {
    digest: layer.digest,
    size: layer.size,
    open: client.blobOpener(repository, layer.digest, `chart ${name} ${version} (${registry}/${repository})`),
    entry,
    url: `${ref}:${tag}`,
  }
}

async function readConfig(
  client: RegistryClient,
  repository: string,
  config: {digest: string; size: number},
): Promise<Record<string, unknown>> {
  // Only metadata for index.yaml, but unverified bytes are still not used (the caller takes a failure as no metadata).
  const bytes = await client.getSmallBlob(repository, config, `chart config ${config.digest}`, MAX_CONFIG)
  const j = JSON.parse(bytes.toString('utf8')) as unknown
  return j && typeof j === 'object' && !Array.isArray(j) ? (j as Record<string, unknown>) : {}
}
