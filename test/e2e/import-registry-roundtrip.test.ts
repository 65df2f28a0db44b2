import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {pushImage, randomLayer} from '../helpers/images.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)

interface LockImageJson {
  ref: string
  digest: string
  platforms: string[]
}

async function skopeoDigest(ref: string): Promise<string> {
  const {stdout} = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {
    encoding: 'buffer',
    maxBuffer: 1 << 24,
  })
  return `sha256:${createHash('sha256').update(stdout).digest('hex')}`
}

/**
 * The whole path: images in a "source" registry, `airlock build` (pull +
 * bundle, split into parts), then `airlock import registry` of that real
 * bundle into another registry. Every target has the digest bundle.json
 * names, platform-filtered indexes included.
 */
describe('airlock build, then import registry of the real bundle (split into parts)', () => {
  let src: RegistryServer
  let dst: RegistryServer
  let work: string

  beforeAll(async () => {
    src = await startRegistry()
    dst = await startRegistry()
    work = await makeTempDir('airlock-ireg-rt-')
    const base = [randomLayer(400_000)]
    await pushImage(src, {
      repository: 'apps/web',
      tag: '1.0',
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 2,
      layerSize: 300_000,
      baseLayers: base,
    })
    await pushImage(src, {
      repository: 'apps/api',
      tag: '2',
      format: 'docker',
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 1,
      layerSize: 200_000,
      baseLayers: base,
    })
    await pushImage(src, {repository: 'tools/one', tag: 'v1', layers: 1, layerSize: 100_000})
    await writeFile(
      join(work, 'airlock.yaml'),
      [
        'apiVersion: airlock/v1',
        'kind: Manifest',
        'metadata:',
        '  name: roundtrip',
        'spec:',
        '  platforms: [linux/amd64]',
        '  images:',
        `    - ref: ${src.host}/apps/web:1.0`,
        '      platforms: [all]',
        `    - ${src.host}/apps/api:2`,
        `    - ${src.host}/tools/one:v1`,
        '',
      ].join('\n'),
    )
  })
  afterAll(async () => {
    await src?.stop()
    await dst?.stop()
  })

  it('imports every image at the digest bundle.json names', async () => {
    const out = join(work, 'bundle')
    const b = await runCli([
      'build',
      join(work, 'airlock.yaml'),
      '--store',
      join(work, 'store'),
      '--out',
      out,
      '--split',
      '300K',
    ])
    expect(b.code, b.stderr).toBe(0)
    expect((await readdir(out)).some((n) => n.startsWith('offline-images.tar.0'))).toBe(true)
    const lock = JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8')) as {images: LockImageJson[]}

    const r = await runCli([
      'import',
      'registry',
      out,
      '--registry',
      dst.host,
      '--namespace',
      'mirror',
      '--keep-registry-host',
      '--json',
    ])
    expect(r.code, r.stderr + r.stdout).toBe(0)
    const rows = (JSON.parse(r.stdout) as {items: {source: string; target: string; digest: string}[]}).items
    expect(rows).toHaveLength(3)
    const hostPart = src.host.replace(':', '_')
    for (const [k, img] of lock.images.entries()) {
      expect(rows[k].source).toBe(img.ref)
      expect(rows[k].target).toBe(`${dst.host}/mirror/${hostPart}/${img.ref.slice(src.host.length + 1)}`)
      expect(rows[k].digest).toBe(img.digest)
      expect(await skopeoDigest(rows[k].target)).toBe(img.digest)
    }
    // The platform-filtered image is a single manifest now; the [all] one kept both platforms.
    const web = lock.images.find((i) => i.ref.endsWith('/apps/web:1.0'))!
    expect(web.platforms).toEqual(['linux/amd64', 'linux/arm64'])
    await run('skopeo', [
      'copy',
      '--all',
      '--src-tls-verify=false',
      `docker://${rows[0].target}`,
      `dir:${join(work, 'check')}`,
    ])
  })

  it('a pinned index digest is served at that digest after import, whatever platforms the entry asks for', async () => {
    const pinned = await pushImage(src, {
      repository: 'apps/pinned',
      tag: '3',
      platforms: ['linux/amd64', 'linux/arm64'],
      layers: 1,
      layerSize: 50_000,
    })
    const dir = await makeTempDir('airlock-ireg-pin-')
    const manifest = join(dir, 'pinned.yaml')
    await writeFile(
      manifest,
      [
        'apiVersion: airlock/v1',
        'kind: Manifest',
        'metadata: {name: pinned}',
        'spec:',
        '  images:',
        `    - ref: ${src.host}/apps/pinned@${pinned.digest}`,
        '      platforms: [linux/amd64]',
        `    - ${src.host}/apps/pinned:3`,
        '',
      ].join('\n'),
    )
    const out = join(dir, 'bundle')
    const b = await runCli(['build', manifest, '--store', join(dir, 'store'), '--out', out])
    expect(b.code, b.stderr).toBe(0)
    expect(b.stderr).toContain(
      `${src.host}/apps/pinned@${pinned.digest}: pinned to an index digest with no tag; carrying all 2 platforms`,
    )
    const lock = JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8')) as {
      images: (LockImageJson & {sourceDigest?: string})[]
    }
    const byPin = lock.images.find((i) => i.ref.includes('@'))!
    const byTag = lock.images.find((i) => i.ref.endsWith(':3'))!
    expect(byPin).toMatchObject({digest: pinned.digest, platforms: ['linux/amd64', 'linux/arm64']})
    expect(byPin.sourceDigest).toBeUndefined()
    // Unpinned with a platform subset: a filtered index, its own digest, the upstream one recorded.
    expect(byTag.platforms).toEqual(['linux/amd64'])
    expect(byTag.digest).not.toBe(pinned.digest)
    expect(byTag.sourceDigest).toBe(pinned.digest)
    const shown = await runCli(['inspect', out])
    expect(shown.stdout).toContain(
      `${byTag.ref}: a platform subset; the mirror serves ${byTag.digest}, not upstream's ${pinned.digest}`,
    )

    const r = await runCli(['import', 'registry', out, '--registry', dst.host, '--namespace', 'pin'])
    expect(r.code, r.stderr + r.stdout).toBe(0)
    expect(await skopeoDigest(`${dst.host}/pin/apps/pinned@${pinned.digest}`)).toBe(pinned.digest)
    expect(await skopeoDigest(`${dst.host}/pin/apps/pinned:3`)).toBe(byTag.digest)
  })
})
