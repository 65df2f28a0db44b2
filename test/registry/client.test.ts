import {afterEach, describe, expect, it} from 'vitest'

import {sha256Digest} from '../../src/lib/content/digest.js'
import {MediaType} from '../../src/lib/content/media-types.js'
import {IntegrityError, RegistryError} from '../../src/lib/errors.js'
import {OciLayoutSink} from '../../src/lib/oci/layout.js'
import {RegistryClient} from '../../src/lib/registry/client.js'
import {referrersTag} from '../../src/lib/registry/referrers.js'
import {Store} from '../../src/lib/store/store.js'
import {smallImage} from '../helpers/image-role-contracts.js'
import {type FakeRegistry, type FakeRegistryOptions, startFakeRegistry} from '../helpers/registry-fake.js'
import {makeTempDir} from '../helpers/tmp.js'

// The registry client against the in-process fake registry (test/helpers/registry-fake.ts), for
// what a real registry cannot be made to do on demand: tokens that expire mid-run, 429/503 with
// Retry-After, answers whose digest is wrong. test/e2e/registry-client.test.ts keeps the client
// honest against the real distribution registry.

const FAST = {attempts: 4, baseDelayMs: 1, maxDelayMs: 5}
const started: FakeRegistry[] = []

afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()))
})

async function fake(opts: FakeRegistryOptions = {}): Promise<FakeRegistry> {
  const r = await startFakeRegistry(opts)
  started.push(r)
  return r
}

function client(
  reg: FakeRegistry,
  creds: 'right' | 'wrong' | 'none' = reg.username ? 'right' : 'none',
): RegistryClient {
  const credentials =
    creds === 'none'
      ? undefined
      : {username: reg.username!, password: creds === 'right' ? reg.password! : 'not-the-password'}
  return new RegistryClient({registry: reg.host, dockerConfig: false, credentials, policy: FAST})
}

/** smallImage() linked into `repository` and tagged. */
function seedImage(reg: FakeRegistry, repository: string, tag = '1.0'): ReturnType<typeof smallImage> {
  const img = smallImage()
  reg.seedBlob(repository, img.config)
  reg.seedBlob(repository, img.layer)
  reg.seedManifest(repository, img.manifest, MediaType.ociManifest, tag)
  return img
}

describe('RegistryClient on the fake registry', () => {
  it('resolves a tag to the manifest, its media type and digest, and HEADs it', async () => {
    const reg = await fake()
    const img = seedImage(reg, 'team/app')
    const c = client(reg)
    const m = await c.getManifest('team/app', '1.0')
    expect(m).toEqual({bytes: img.manifest, mediaType: MediaType.ociManifest, digest: img.descs.manifest.digest})
    expect(await c.headManifest('team/app', '1.0')).toEqual({
      digest: img.descs.manifest.digest,
      mediaType: MediaType.ociManifest,
      size: img.manifest.length,
    })
    expect(await c.headManifest('team/app', 'nope')).toBeUndefined()
    await expect(c.getManifest('team/app', 'nope')).rejects.toThrow(
      `${reg.host}/team/app:nope: no such tag (HTTP 404 MANIFEST_UNKNOWN)`,
    )
  })

  it('lists tags and the catalog page after page through Link headers', async () => {
    const reg = await fake()
    const tags = Array.from({length: 25}, (_, i) => `v${String(i).padStart(2, '0')}`)
    const img = seedImage(reg, 'team/app', tags[0])
    for (const t of tags) reg.repo('team/app').tags.set(t, img.descs.manifest.digest)
    for (const n of ['a/one', 'b/two', 'c/three']) reg.repo(n)
    const c = client(reg)
    expect(await c.listTags('team/app', {pageSize: 10})).toEqual(tags)
    expect(reg.count('GET', /\/tags\/list/)).toBe(3)
    expect(await c.catalog({pageSize: 2})).toEqual(['a/one', 'b/two', 'c/three', 'team/app'])
    expect(reg.count('GET', /_catalog/)).toBe(2)
  })

  it('reads referrers from the API (filtered by artifactType), else from the referrers tag schema index', async () => {
    const sbomType = 'application/spdx+json'
    for (const referrersApi of [true, false]) {
      const reg = await fake({referrersApi})
      const img = seedImage(reg, 'team/app')
      const subject = {mediaType: MediaType.ociManifest, digest: img.descs.manifest.digest, size: img.manifest.length}
      const empty = Buffer.from('{}')
      reg.seedBlob('team/app', empty)
      const art = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          artifactType: sbomType,
          config: {mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(empty), size: 2},
          layers: [],
          subject,
        }),
      )
      const other = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.ociManifest,
          artifactType: 'application/other',
          config: {mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(empty), size: 2},
          layers: [],
          subject,
        }),
      )
      reg.seedManifest('team/app', art, MediaType.ociManifest)
      reg.seedManifest('team/app', other, MediaType.ociManifest)
      if (!referrersApi) {
        const index = {
          schemaVersion: 2,
          mediaType: MediaType.ociIndex,
          manifests: [art, other].map((b, i) => ({
            mediaType: MediaType.ociManifest,
            digest: sha256Digest(b),
            size: b.length,
            artifactType: i === 0 ? sbomType : 'application/other',
          })),
        }
        reg.seedManifest(
          'team/app',
          Buffer.from(JSON.stringify(index)),
          MediaType.ociIndex,
          referrersTag(img.descs.manifest.digest),
        )
      }
      const c = client(reg)
      const found = await c.referrers('team/app', img.descs.manifest.digest, sbomType)
      expect(
        found.map((d) => d.digest),
        `referrers API ${referrersApi}`,
      ).toEqual([sha256Digest(art)])
      expect(await c.referrers('team/app', sha256Digest(empty))).toEqual([])
    }
  })

  it('answers a Bearer challenge with a token for the scope, reuses it, and gets a new one when it expires mid-run', async () => {
    const reg = await fake({auth: 'bearer', tokenUses: 3})
    const img = seedImage(reg, 'team/app')
    const c = client(reg)
    for (let i = 0; i < 7; i++) expect((await c.getManifest('team/app', '1.0')).digest).toBe(img.descs.manifest.digest)
    // One token for the scope, then one more each time the registry stopped taking it.
    expect(reg.tokenRequests.every((t) => t.ok && t.user === reg.username)).toBe(true)
    expect(reg.tokenRequests[0].scopes).toEqual(['repository:team/app:pull'])
    expect(reg.tokenRequests.length).toBe(3)
    // Every request that was refused for its token was sent again with a fresh one.
    const refused = reg.requests.filter((r) => r.status === 401 && r.url.includes('/manifests/'))
    expect(refused.length).toBe(2)
    expect(reg.count('GET', /\/manifests\/1\.0/)).toBe(7 + refused.length)
  })

  it('asks for the further scope a 401 names (a mount from another repository)', async () => {
    const reg = await fake({auth: 'bearer'})
    seedImage(reg, 'team/app')
    const c = client(reg)
    const res = await c.request({
      method: 'POST',
      path: '/v2/team/copy/blobs/uploads/?mount=sha256:00&from=team/app',
      repository: 'team/copy',
      actions: ['pull', 'push'],
      accept: (s) => s === 202,
    })
    expect(res.status).toBe(202)
    expect(reg.tokenRequests.at(-1)!.scopes.sort()).toEqual([
      'repository:team/app:pull',
      'repository:team/copy:pull,push',
    ])
  })

  it('says whose credentials a token service refused, never the password, and does not retry', async () => {
    const reg = await fake({auth: 'bearer'})
    seedImage(reg, 'team/app')
    const err = await client(reg, 'wrong')
      .getManifest('team/app', '1.0')
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RegistryError)
    expect((err as RegistryError).message).toBe(
      `${reg.host}: the token service ${reg.host} refused the credentials (HTTP 401)`,
    )
    expect((err as RegistryError).suggestions.join(' ')).toContain(`user ${reg.username} (from --username/--password)`)
    expect(JSON.stringify(err)).not.toContain('not-the-password')
    expect(reg.tokenRequests.length).toBe(1)
  })

  it('speaks Basic auth, and a wrong password is a 401 with a hint', async () => {
    const reg = await fake({auth: 'basic'})
    const img = seedImage(reg, 'team/app')
    expect((await client(reg).getManifest('team/app', '1.0')).digest).toBe(img.descs.manifest.digest)
    expect(
      reg.requests.filter((r) => r.url.includes('/manifests/')).every((r) => r.auth === 'basic' && r.status === 200),
    ).toBe(true)
    const err = (await client(reg, 'wrong')
      .getManifest('team/app', '1.0')
      .catch((e: unknown) => e)) as RegistryError
    expect(err).toMatchObject({status: 401, host: reg.host, codes: ['UNAUTHORIZED']})
    expect(err.message).toContain(`manifest ${reg.host}/team/app:1.0: HTTP 401 UNAUTHORIZED`)
    expect(err.suggestions.join(' ')).toContain('check the username and password')
  })

  it('waits as Retry-After says on a 429, retries a 503, never a 404', async () => {
    const reg = await fake({
      faults: [{method: 'GET', path: /\/manifests\/1\.0$/, nth: [1], action: {status: 429, retryAfter: '1'}}],
    })
    const img = seedImage(reg, 'team/app')
    // Retry-After is honoured up to four times the policy's longest wait.
    const c = new RegistryClient({
      registry: reg.host,
      dockerConfig: false,
      policy: {attempts: 4, baseDelayMs: 1, maxDelayMs: 1000},
    })
    const t0 = Date.now()
    expect((await c.getManifest('team/app', '1.0')).digest).toBe(img.descs.manifest.digest)
    // The policy alone would wait a few milliseconds.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950)
    expect(reg.count('GET', /\/manifests\/1\.0$/)).toBe(2)

    reg.addFault({method: 'GET', path: /\/manifests\/2\.0$/, nth: [1, 2], action: {status: 503}})
    reg.repo('team/app').tags.set('2.0', img.descs.manifest.digest)
    expect((await c.getManifest('team/app', '2.0')).digest).toBe(img.descs.manifest.digest)
    expect(reg.count('GET', /\/manifests\/2\.0$/)).toBe(3)

    await expect(c.getManifest('team/app', '3.0')).rejects.toThrow(/HTTP 404/)
    expect(reg.count('GET', /\/manifests\/3\.0$/)).toBe(1)
  })

  it('gives up after the policy with an error that names the registry, the request and the status', async () => {
    const reg = await fake({faults: [{path: /\/manifests\//, action: {status: 503, code: 'UNAVAILABLE'}}]})
    seedImage(reg, 'team/app')
    const err = (await client(reg)
      .getManifest('team/app', '1.0')
      .catch((e: unknown) => e)) as RegistryError
    expect(err).toBeInstanceOf(RegistryError)
    expect(err).toMatchObject({status: 503, host: reg.host, codes: ['UNAVAILABLE']})
    expect(err.message).toBe(`manifest ${reg.host}/team/app:1.0: HTTP 503 UNAVAILABLE: a fault of the fake registry`)
    expect(reg.count('GET', /\/manifests\//)).toBe(FAST.attempts)
  })

  it('refuses a manifest whose Docker-Content-Digest is not its bytes, or whose bytes are not the digest asked for', async () => {
    const reg = await fake({faults: [{method: 'GET', path: /\/manifests\/1\.0$/, action: 'wrong-digest'}]})
    const img = seedImage(reg, 'team/app')
    const c = client(reg)
    await expect(c.getManifest('team/app', '1.0')).rejects.toThrow(IntegrityError)
    await expect(c.getManifest('team/app', '1.0')).rejects.toThrow(/Docker-Content-Digest/)
    // A registry that serves other bytes under a digest, without a Docker-Content-Digest to give it away.
    const liar = sha256Digest('what was asked for')
    reg.manifests.set(liar, {bytes: img.manifest, mediaType: MediaType.ociManifest})
    reg.repo('team/app').manifests.add(liar)
    reg.addFault({method: 'GET', path: new RegExp(`/manifests/${liar}$`), action: 'no-digest'})
    const err = await c.getManifest('team/app', liar).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toBe(
      `manifest ${reg.host}/team/app@${liar}: digest mismatch: expected ${liar}, got ${img.descs.manifest.digest}`,
    )
  })

  it('reads a small blob verified against its digest, and refuses other bytes', async () => {
    const reg = await fake()
    const img = seedImage(reg, 'team/app')
    const c = client(reg)
    expect(await c.getSmallBlob('team/app', img.descs.config, 'the config')).toEqual(img.config)
    const liar = {digest: sha256Digest('another config'), size: img.config.length}
    reg.blobs.set(liar.digest, img.config)
    reg.repo('team/app').blobs.add(liar.digest)
    await expect(c.getSmallBlob('team/app', liar, 'the config')).rejects.toThrow(IntegrityError)
  })

  it('a blob whose connection is cut mid-body is asked again from the byte it stopped at', async () => {
    const reg = await fake({faults: [{method: 'GET', path: /\/blobs\/sha256:/, nth: [1], action: 'reset'}]})
    const img = seedImage(reg, 'team/app')
    const store = new Store(await makeTempDir('fake-registry-'))
    await store.init()
    const sink = new OciLayoutSink(store, {policy: FAST})
    const r = await sink.putBlob(img.descs.layer, client(reg).blobOpener('team/app', img.descs.layer.digest), {
      label: 'the layer',
    })
    expect((await sink.readBlob(img.descs.layer))?.equals(img.layer)).toBe(true)
    const gets = reg.requests.filter((q) => q.method === 'GET' && q.url.endsWith(img.descs.layer.digest))
    expect(gets.length).toBe(2)
    // The second asks from the byte the partial file reached: what of the half the fake sent got
    // written before the error (all of it, unless the machine is slow), never more.
    const from = gets[1].range === undefined ? 0 : Number(/^bytes=(\d+)-$/.exec(gets[1].range)![1])
    expect(from).toBeLessThanOrEqual(img.layer.length / 2)
    expect(r.bytesFetched).toBeLessThanOrEqual(img.layer.length / 2 + (img.layer.length - from))
  })
})
