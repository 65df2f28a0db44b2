import {Readable} from 'node:stream'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import type {Opener} from '../../../src/lib/content/opener.js'
import {RegistryClient} from '../../../src/lib/registry/client.js'
import {RegistryPusher} from '../../../src/lib/registry/push.js'
import {RegistrySource} from '../../../src/lib/registry/source.js'
import {PushRun, RegistrySink} from '../../../src/lib/targets/registry/registry-sink.js'
import {imageSinkContract, imageSourceContract, putSmallImage, smallImage} from '../../helpers/image-role-contracts.js'
import {type FakeRegistry, startFakeRegistry} from '../../helpers/registry-fake.js'

// The image role suites and the sink's skip/mount/upload choice, on the in-process fake registry
// (test/helpers/registry-fake.ts): fast, and with Bearer auth as a pushing registry asks for it.
// test/e2e/image-roles-registry.test.ts runs the same suites against the real distribution registry.

let reg: FakeRegistry
let repos = 0

beforeAll(async () => {
  reg = await startFakeRegistry({auth: 'bearer'})
})
afterAll(async () => {
  await reg?.stop()
})

function client(): RegistryClient {
  return new RegistryClient({
    registry: reg.host,
    dockerConfig: false,
    credentials: {username: reg.username!, password: reg.password!},
    policy: {attempts: 3, baseDelayMs: 1, maxDelayMs: 5},
  })
}

function place(): {client: RegistryClient; run: PushRun; sink: RegistrySink; repository: string} {
  const c = client()
  const run = new PushRun(new RegistryPusher(c))
  const repository = `contract/repo-${++repos}`
  return {client: c, run, repository, sink: new RegistrySink(run, repository)}
}

const opener =
  (bytes: Buffer): Opener =>
  async () => ({stream: Readable.from([bytes]), start: 0, total: bytes.length, url: 'test:'})

imageSinkContract('RegistrySink (fake registry)', async () => {
  const {client: c, sink, repository} = place()
  return {
    sink,
    reference: '1.0',
    read: async (digest) =>
      reg.repos.get(repository)?.blobs.has(digest) || reg.repos.get(repository)?.manifests.has(digest)
        ? (reg.blobs.get(digest) ?? reg.manifests.get(digest)?.bytes)
        : undefined,
    resolve: async (tag) => {
      const m = await c.getManifest(repository, tag).catch(() => undefined)
      return m && {mediaType: m.mediaType, digest: m.digest, size: m.bytes.length}
    },
  }
})

imageSourceContract('RegistrySource (fake registry)', async () => {
  const {client: c, sink, repository} = place()
  const image = await putSmallImage(sink)
  return {source: new RegistrySource(c, repository), image}
})

describe('RegistrySink on the fake registry', () => {
  it('skips a blob the repository has, mounts one another repository of the run pushed, else uploads', async () => {
    const {run, repository} = place()
    const other = `${repository}-other`
    const img = smallImage()
    const a = new RegistrySink(run, repository)
    const b = new RegistrySink(run, other)
    const put = (sink: RegistrySink) => sink.putBlob(img.descs.layer, opener(img.layer), {label: 'layer'})

    expect(await a.hasBlob(img.descs.layer)).toBe(false)
    expect(await put(a)).toEqual({bytesFetched: img.layer.length, bytesResumed: 0})
    expect(run.stats).toMatchObject({uploaded: 1, bytesUploaded: img.layer.length, mounted: 0, present: 0})

    // Another repository of the same run: mounted from the first, not sent again.
    const patchesBefore = reg.count('PATCH', /blobs\/uploads/) + reg.count('PUT', /blobs\/uploads/)
    expect(await b.hasBlob(img.descs.layer)).toBe(true)
    expect(run.stats).toMatchObject({uploaded: 1, mounted: 1})
    expect(reg.count('PATCH', /blobs\/uploads/) + reg.count('PUT', /blobs\/uploads/)).toBe(patchesBefore)
    expect(reg.repos.get(other)!.blobs.has(img.descs.layer.digest)).toBe(true)

    // Found where it is: HEAD says so, nothing is written.
    expect(await a.hasBlob(img.descs.layer)).toBe(true)
    expect(run.stats).toMatchObject({uploaded: 1, mounted: 1, present: 1})

    // A manifest already there by digest and tag is not pushed again.
    await a.putBlob(img.descs.config, opener(img.config), {label: 'config'})
    await a.putManifest(img.descs.manifest, img.manifest)
    await a.tag('1.0', img.descs.manifest, img.manifest)
    expect(run.stats.manifestsPushed).toBe(2)
    const puts = reg.count('PUT', /\/manifests\//)
    await a.putManifest(img.descs.manifest, img.manifest)
    await a.tag('1.0', img.descs.manifest, img.manifest)
    expect(reg.count('PUT', /\/manifests\//)).toBe(puts)
    expect(run.stats.manifestsPushed).toBe(2)
  })

  it('uploads in a second repository when the registry declines the mount', async () => {
    const {run, repository} = place()
    const img = smallImage()
    const a = new RegistrySink(run, repository)
    const b = new RegistrySink(run, `${repository}-declined`)
    await a.putBlob(img.descs.layer, opener(img.layer), {label: 'layer'})
    // The registry lost the first repository's link: the mount it is asked for cannot be done.
    reg.repos.get(repository)!.blobs.delete(img.descs.layer.digest)
    expect(await b.hasBlob(img.descs.layer)).toBe(false)
    await b.putBlob(img.descs.layer, opener(img.layer), {label: 'layer'})
    expect(run.stats).toMatchObject({uploaded: 2, mounted: 0})
    expect(reg.repos.get(`${repository}-declined`)!.blobs.has(img.descs.layer.digest)).toBe(true)
  })
})
