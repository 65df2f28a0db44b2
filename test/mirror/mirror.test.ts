import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {sha256Digest} from '../../src/lib/content/digest.js'
import {parseManifest} from '../../src/lib/manifest/load.js'
import {mirror, type MirrorOptions} from '../../src/lib/mirror/mirror.js'
import {silentProgress} from '../../src/lib/ui/progress.js'
import {type PushedImage, pushImage, randomLayer} from '../helpers/images.js'
import {type FakeRegistry, startFakeRegistry} from '../helpers/registry-fake.js'
import {makeTempDir} from '../helpers/tmp.js'

// mirror, registry to registry, between two in-process fake registries (test/helpers/registry-fake.ts):
// the library call without the CLI and without Debian servers. test/e2e/mirror.test.ts runs the
// command against two real distribution registries.

let source: FakeRegistry
let target: FakeRegistry
let single: PushedImage
let multi: PushedImage
const dockerConfig = process.env.DOCKER_CONFIG

beforeAll(async () => {
  // No credentials from the user's Docker config reach the fakes.
  process.env.DOCKER_CONFIG = await makeTempDir('fake-docker-config-')
  source = await startFakeRegistry()
  target = await startFakeRegistry({auth: 'bearer'})
  const base = randomLayer(30_000)
  single = await pushImage(source, {repository: 'team/app', tag: '1.0', baseLayers: [base], layerSize: 20_000})
  multi = await pushImage(source, {
    repository: 'team/multi',
    tag: '2.0',
    platforms: ['linux/amd64', 'linux/arm64'],
    baseLayers: [base],
    layerSize: 20_000,
  })
})

afterAll(async () => {
  if (dockerConfig === undefined) delete process.env.DOCKER_CONFIG
  else process.env.DOCKER_CONFIG = dockerConfig
  await source?.stop()
  await target?.stop()
})

function manifestOf(images: string[], platforms?: string): ReturnType<typeof parseManifest> {
  const yaml = `apiVersion: airlock/v1\nkind: Manifest\nmetadata:\n  name: fake\nspec:\n${platforms ? `  platforms: [${platforms}]\n` : ''}  images:\n${images.map((i) => `    - ${i}\n`).join('')}`
  return parseManifest(Buffer.from(yaml), '/nonexistent/mirror.yaml')
}

function options(namespace: string): MirrorOptions {
  return {
    registry: target.host,
    namespace,
    credentials: {username: target.username!, password: target.password!},
    concurrency: 2,
    progress: silentProgress,
    chunkSize: 16 * 1024,
  }
}

describe('mirror between two fake registries', () => {
  it('copies images at their source digests, mounts the shared layer, and a second run writes nothing', async () => {
    const m = manifestOf([`${source.host}/team/app:1.0`, `{ref: ${source.host}/team/multi:2.0, platforms: [all]}`])
    const r = await mirror(m, options('dmz'))
    expect(r.images.map((i) => [i.target, i.digest]).sort()).toEqual(
      [
        [`${target.host}/dmz/team/app:1.0`, single.digest],
        [`${target.host}/dmz/team/multi:2.0`, multi.digest],
      ].sort(),
    )
    expect(target.repos.get('dmz/team/app')!.tags.get('1.0')).toBe(single.digest)
    expect(target.repos.get('dmz/team/multi')!.tags.get('2.0')).toBe(multi.digest)
    for (const b of [...single.blobs, ...multi.blobs])
      expect(target.blobs.get(b.digest)?.equals(b.data), b.digest).toBe(true)
    // The base layer went over the wire once and was mounted into the other repository.
    expect(r.stats.mounted).toBe(1)
    expect(r.stats.uploaded).toBe(new Set([...single.blobs, ...multi.blobs].map((b) => b.digest)).size)

    const writes = () => target.requests.filter((q) => ['PUT', 'PATCH', 'POST'].includes(q.method)).length
    const before = writes()
    const again = await mirror(m, options('dmz'))
    expect(again.stats).toMatchObject({uploaded: 0, mounted: 0, manifestsPushed: 0})
    expect(writes()).toBe(before)
  })

  it('filters a multi-arch image to the platforms asked for: a new index, the source digest kept beside it', async () => {
    const r = await mirror(manifestOf([`${source.host}/team/multi:2.0`], 'linux/arm64'), options('arm'))
    const [img] = r.images
    expect(img).toMatchObject({
      target: `${target.host}/arm/team/multi:2.0`,
      platforms: ['linux/arm64'],
      sourceDigest: multi.digest,
    })
    expect(img.digest).not.toBe(multi.digest)
    const index = target.manifests.get(img.digest)!
    expect(sha256Digest(index.bytes)).toBe(img.digest)
    const arm = multi.children!.find((c) => c.platform === 'linux/arm64')!
    const amd = multi.children!.find((c) => c.platform === 'linux/amd64')!
    expect(
      (JSON.parse(index.bytes.toString()) as {manifests: {digest: string}[]}).manifests.map((d) => d.digest),
    ).toEqual([arm.digest])
    expect(target.repos.get('arm/team/multi')!.manifests.has(amd.digest)).toBe(false)
  })

  it('stops with the registry error when the target keeps failing, and names the image', async () => {
    target.addFault({
      method: 'PUT',
      path: /^\/v2\/broken\/.*\/manifests\//,
      action: {status: 400, code: 'MANIFEST_INVALID'},
    })
    await expect(mirror(manifestOf([`${source.host}/team/app:1.0`]), options('broken'))).rejects.toThrow(
      `manifest ${target.host}/broken/team/app@${single.digest}: HTTP 400 MANIFEST_INVALID`,
    )
  })
})
