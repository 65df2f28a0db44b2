import {createHash, randomBytes} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import pLimit from 'p-limit'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {parse} from 'yaml'

import type {ChartEntry, Manifest} from '../../src/lib/manifest/types.js'
import type {PullContext} from '../../src/lib/pull/context.js'
import {pullFiles} from '../../src/lib/pull/files.js'
import {RegistryClient} from '../../src/lib/registry/client.js'
import {Store} from '../../src/lib/store/store.js'
import {silentProgress} from '../../src/lib/ui/progress.js'
import {type PushedChart, pushHelmChart} from '../helpers/charts.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

// Charts pulled from a real registry (`chart: {ref: oci://...}`), as `helm push` stores them.

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')
const tgz = randomBytes(40_000)
let reg: RegistryServer
let pushed: PushedChart

beforeAll(async () => {
  reg = await startRegistry()
  pushed = await pushHelmChart(reg, {
    repository: 'charts/gamma',
    version: '1.2.3+build.1',
    tgz,
    meta: {description: 'a test chart', appVersion: '9.9'},
  })
  await pushHelmChart(reg, {
    repository: 'charts/notchart',
    version: '1.0.0',
    tgz,
    layerMediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
  })
}, 120_000)

afterAll(async () => {
  await reg?.stop()
})

function manifestOf(charts: ChartEntry[]): Manifest {
  return {
    file: 't.yaml',
    dir: '.',
    name: 't',
    platforms: [],
    registries: [],
    images: [],
    binaries: [],
    packages: charts,
  }
}

function oci(repository: string, version: string): ChartEntry {
  const name = repository.split('/').pop()!
  return {
    kind: 'chart',
    ociRef: `oci://${reg.host}/${repository}`,
    name,
    version,
    path: `charts/${name}-${version}.tgz`,
    pos: {line: 1, column: 1},
  }
}

async function context(): Promise<PullContext> {
  const store = new Store(await makeTempDir('airlock-oci-chart-'))
  await store.init()
  return {
    store,
    pool: pLimit(4),
    concurrency: 4,
    progress: silentProgress,
    caFiles: [],
    registry: (host) => new RegistryClient({registry: host}),
  }
}

describe('OCI charts', () => {
  it('pulls the chart layer, verified, and lists it in charts/index.yaml with its Chart.yaml fields', async () => {
    const ctx = await context()
    const [r] = await pullFiles(manifestOf([oci('charts/gamma', '1.2.3+build.1')]), ctx)
    expect(r).toMatchObject({
      kind: 'chart',
      path: 'charts/gamma-1.2.3+build.1.tgz',
      url: `${pushed.ref}:${pushed.tag}`,
      size: tgz.length,
      sha256: sha(tgz),
      reused: false,
    })
    const dir = join(ctx.store.packages, 'charts')
    expect(await readFile(join(dir, 'gamma-1.2.3+build.1.tgz'))).toEqual(tgz)
    const idx = parse(await readFile(join(dir, 'index.yaml'), 'utf8')) as {
      entries: Record<string, Record<string, unknown>[]>
    }
    expect(idx.entries.gamma[0]).toMatchObject({
      name: 'gamma',
      version: '1.2.3+build.1',
      description: 'a test chart',
      appVersion: '9.9',
      digest: sha(tgz),
      urls: ['gamma-1.2.3+build.1.tgz'],
    })
    const [again] = await pullFiles(manifestOf([oci('charts/gamma', '1.2.3+build.1')]), ctx)
    expect(again.reused).toBe(true)
  })

  it('names a missing version and refuses an artifact that is not a chart', async () => {
    const ctx = await context()
    await expect(pullFiles(manifestOf([oci('charts/gamma', '4.0.0')]), ctx)).rejects.toThrow(/4\.0\.0/)
    await expect(pullFiles(manifestOf([oci('charts/notchart', '1.0.0')]), ctx)).rejects.toThrow(
      `oci://${reg.host}/charts/notchart:1.0.0 is not a Helm chart: no application/vnd.cncf.helm.chart.content.v1.tar+gzip layer`,
    )
  })
})
