import {createHash} from 'node:crypto'

import {harnessRequest} from './http.js'
import type {RegistryServer} from './registry.js'

// Helm charts in a registry as `helm push` stores them (config + one chart layer),
// pushed with plain HTTP calls so the test does not depend on src/.

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`

async function pushBlob(reg: RegistryServer, repository: string, data: Buffer): Promise<string> {
  const digest = sha(data)
  const start = await harnessRequest(`${reg.url}/v2/${repository}/blobs/uploads/`, {method: 'POST', ca: reg.caFile})
  if (start.status !== 202) throw new Error(`upload start: HTTP ${start.status}`)
  const loc = new URL(String(start.headers.location), reg.url)
  loc.searchParams.set('digest', digest)
  const put = await harnessRequest(loc.toString(), {
    method: 'PUT',
    body: data,
    headers: {'content-type': 'application/octet-stream'},
    ca: reg.caFile,
  })
  if (put.status !== 201) throw new Error(`upload ${digest}: HTTP ${put.status}`)
  return digest
}

export interface PushedChart {
  ref: string
  tag: string
  layerDigest: string
  manifestDigest: string
}

/** Push `tgz` as chart `version` of `repository`, with `meta` as its Chart.yaml (config). */
export async function pushHelmChart(
  reg: RegistryServer,
  opts: {repository: string; version: string; tgz: Buffer; meta?: Record<string, unknown>; layerMediaType?: string},
): Promise<PushedChart> {
  const name = opts.repository.split('/').pop()!
  const config = Buffer.from(JSON.stringify({apiVersion: 'v2', name, version: opts.version, ...opts.meta}))
  const configDigest = await pushBlob(reg, opts.repository, config)
  const layerDigest = await pushBlob(reg, opts.repository, opts.tgz)
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: {mediaType: 'application/vnd.cncf.helm.config.v1+json', digest: configDigest, size: config.length},
      layers: [
        {
          mediaType: opts.layerMediaType ?? 'application/vnd.cncf.helm.chart.content.v1.tar+gzip',
          digest: layerDigest,
          size: opts.tgz.length,
        },
      ],
    }),
  )
  const tag = opts.version.replace(/\+/g, '_')
  const res = await harnessRequest(`${reg.url}/v2/${opts.repository}/manifests/${tag}`, {
    method: 'PUT',
    body: manifest,
    headers: {'content-type': 'application/vnd.oci.image.manifest.v1+json'},
    ca: reg.caFile,
  })
  if (res.status !== 201) throw new Error(`manifest ${tag}: HTTP ${res.status} ${res.body.toString()}`)
  return {ref: `oci://${reg.host}/${opts.repository}`, tag, layerDigest, manifestDigest: sha(manifest)}
}
