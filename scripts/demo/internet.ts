/**
 * The demo's "internet": a registry with three images (multi-arch, Docker
 * format, shared base layers) and a web server with binaries, packages and a
 * chart, both on loopback; and manifests/demo.yaml pointed at them. The demo
 * and the startup benchmark build their bundle from it.
 */
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {pushImage, randomLayer} from '../../test/helpers/images.js'
import {startNginx} from '../../test/helpers/nginx.js'
import {startRegistry} from '../../test/helpers/registry.js'
import {writeUpstream} from './content.js'

export interface Internet {
  /** manifests/demo.yaml with the servers' addresses. */
  manifest: string
  registry: string
  files: string
  stop(): Promise<void>
}

export async function startInternet(repo: string, work: string): Promise<Internet> {
  const stops: (() => Promise<void>)[] = []
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch(() => {})
  }
  try {
    const source = await startRegistry()
    stops.push(source.stop)
    const base = [randomLayer(2 * 1024 * 1024), randomLayer(1024 * 1024)]
    await pushImage(source, {
      repository: 'demo/nginx',
      tag: '1.25.3',
      platforms: ['linux/amd64', 'linux/arm64'],
      baseLayers: base,
      layers: 2,
      layerSize: 3 * 1024 * 1024,
    })
    await pushImage(source, {
      repository: 'demo/pause',
      tag: '3.9',
      format: 'docker',
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 1,
      layerSize: 256 * 1024,
    })
    await pushImage(source, {
      repository: 'demo/app',
      tag: '1.0',
      baseLayers: base,
      layers: 1,
      layerSize: 2 * 1024 * 1024,
    })
    const upstreamRoot = join(work, 'upstream')
    await writeUpstream(upstreamRoot)
    const upstream = await startNginx({root: upstreamRoot})
    stops.push(upstream.stop)
    const manifest = join(work, 'demo.yaml')
    const template = await readFile(join(repo, 'manifests', 'demo.yaml'), 'utf8')
    await writeFile(
      manifest,
      template.replaceAll('127.0.0.1:5001', source.host).replaceAll('127.0.0.1:8081', upstream.host),
    )
    return {manifest, registry: source.host, files: upstream.url, stop}
  } catch (err) {
    await stop()
    throw err
  }
}
