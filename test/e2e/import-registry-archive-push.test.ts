import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {LockImage} from '../../src/lib/bundle-json.js'
import {pushArchive} from '../../src/lib/importers/push-archive.js'
import {OciArchive} from '../../src/lib/oci/archive.js'
import {RecordingProgress} from '../../src/lib/ui/progress.js'
import {startFaultProxy} from '../helpers/proxy.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {type BundleFixture, makeRegistryBundle} from '../helpers/registry-bundle-fixture.js'

const run = promisify(execFile)

/**
 * The push side against the real registry, below the CLI: chunked uploads
 * (a small chunk size), resumed where the registry says they stand when
 * requests fail, and every digest equal to bundle.json afterwards.
 */
describe('registry push of an oci-archive (server-backed)', () => {
  let reg: RegistryServer
  let bundle: BundleFixture
  let archive: OciArchive

  beforeAll(async () => {
    reg = await startRegistry()
    bundle = await makeRegistryBundle([
      {ref: 'docker.io/library/big:1', layers: 2, layerSize: 3_000_000},
      {ref: 'quay.io/org/multi:1', platforms: ['linux/amd64', 'linux/arm64'], layers: 1, layerSize: 1_500_000},
    ])
    archive = await OciArchive.open([join(bundle.dir, 'offline-images.tar')])
  })
  afterAll(async () => {
    await archive?.close()
    await reg?.stop()
  })

  async function digestOf(ref: string): Promise<string> {
    const {stdout} = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {
      encoding: 'buffer',
    })
    return `sha256:${createHash('sha256').update(stdout).digest('hex')}`
  }

  it('sends large blobs in PATCH chunks and the rest in one PUT', async () => {
    const progress = new RecordingProgress()
    const r = await pushArchive(archive, bundle.lock.images as LockImage[], {
      registry: reg.host,
      namespace: 'chunks',
      concurrency: 4,
      progress,
      chunkSize: 1_000_000,
    })
    expect(r.stats.uploaded).toBe(new Set(bundle.images.flatMap((i) => i.blobs.map((b) => b.digest))).size)
    for (const [k, row] of r.images.entries()) expect(await digestOf(row.target)).toBe(bundle.images[k].digest)
    const log = await readFile(reg.logFile, 'utf8')
    // 3 MB layers in 1 MB chunks: at least three PATCHes each.
    expect((log.match(/"PATCH \/v2\/chunks\/library\/big\/blobs\/uploads\//g) ?? []).length).toBeGreaterThanOrEqual(6)
    expect(progress.events.filter((e) => e.startsWith('done '))).toHaveLength(2)
  })

  it('resumes chunks through a registry that answers 503 every third request', async () => {
    const proxy = await startFaultProxy(reg.url, {failEvery: 3, spareRetries: true})
    try {
      const r = await pushArchive(archive, bundle.lock.images as LockImage[], {
        registry: proxy.host,
        namespace: 'resume',
        concurrency: 2,
        progress: new RecordingProgress(),
        chunkSize: 700_000,
      })
      expect(proxy.faults).toBeGreaterThan(0)
      for (const [k, row] of r.images.entries())
        expect(await digestOf(row.target.replace(proxy.host, reg.host))).toBe(bundle.images[k].digest)
    } finally {
      await proxy.stop()
    }
  })
})
