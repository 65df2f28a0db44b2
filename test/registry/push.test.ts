import {randomBytes} from 'node:crypto'
import {Readable} from 'node:stream'

import {afterEach, describe, expect, it} from 'vitest'

import {sha256Digest} from '../../src/lib/content/digest.js'
import {MediaType} from '../../src/lib/content/media-types.js'
import {IntegrityError, RegistryError} from '../../src/lib/errors.js'
import {RegistryClient} from '../../src/lib/registry/client.js'
import {type BlobReader, RegistryPusher} from '../../src/lib/registry/push.js'
import {smallImage} from '../helpers/image-role-contracts.js'
import {type FakeRegistry, type FakeRegistryOptions, startFakeRegistry} from '../helpers/registry-fake.js'

// Push against the in-process fake registry (test/helpers/registry-fake.ts): a 5xx or a reset on
// the Nth PATCH, a lost session, a closing PUT answered with another digest, none of which the
// real registry does on demand. test/e2e/registry-push.test.ts pushes to the real one.

const FAST = {attempts: 4, baseDelayMs: 1, maxDelayMs: 5}
const CHUNK = 64 * 1024
const started: FakeRegistry[] = []

afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()))
})

async function setup(opts: FakeRegistryOptions = {}): Promise<{reg: FakeRegistry; pusher: RegistryPusher}> {
  const reg = await startFakeRegistry(opts)
  started.push(reg)
  const credentials = reg.username ? {username: reg.username, password: reg.password!} : undefined
  const client = new RegistryClient({registry: reg.host, dockerConfig: false, credentials, policy: FAST})
  return {reg, pusher: new RegistryPusher(client, {chunkSize: CHUNK})}
}

function blobOf(size: number): {bytes: Buffer; desc: {digest: string; size: number}; read: BlobReader} {
  const bytes = randomBytes(size)
  return {
    bytes,
    desc: {digest: sha256Digest(bytes), size},
    read: (offset, length) => Readable.from([bytes.subarray(offset, offset + length)]),
  }
}

const uploads = (reg: FakeRegistry) =>
  reg.requests.filter((r) => r.url.includes('/blobs/uploads/')).map((r) => `${r.method} ${r.status}`)

describe('RegistryPusher on the fake registry', () => {
  it('sends a small blob in one PUT and a large one in PATCH chunks of the chunk size', async () => {
    const {reg, pusher} = await setup({auth: 'bearer'})
    const small = blobOf(10_000)
    expect(await pusher.pushBlob('team/app', small.desc, small.read)).toBe('uploaded')
    expect(uploads(reg)).toEqual(['POST 202', 'PUT 201'])
    expect(reg.blobs.get(small.desc.digest)?.equals(small.bytes)).toBe(true)

    reg.requests.length = 0
    const large = blobOf(3 * CHUNK + 100)
    let sent = 0
    expect(await pusher.pushBlob('team/app', large.desc, large.read, undefined, (n) => (sent += n))).toBe('uploaded')
    expect(uploads(reg)).toEqual(['POST 202', 'PATCH 202', 'PATCH 202', 'PATCH 202', 'PATCH 202', 'PUT 201'])
    expect(reg.blobs.get(large.desc.digest)?.equals(large.bytes)).toBe(true)
    expect(sent).toBe(large.bytes.length)
    expect(await pusher.hasBlob('team/app', large.desc.digest, large.desc.size)).toBe(true)
    expect(await pusher.hasBlob('team/app', large.desc.digest, large.desc.size + 1)).toBe(false)
    expect(await pusher.hasBlob('team/other', large.desc.digest)).toBe(false)
    // One token served every push call: pull and push asked together.
    expect(reg.tokenRequests.map((t) => t.scopes)).toEqual([
      ['repository:team/app:pull,push'],
      ['repository:team/other:pull,push'],
    ])
  })

  it("takes the registry's OCI-Chunk-Min-Length over a smaller chunk size", async () => {
    const {reg, pusher} = await setup({chunkMinLength: 2 * CHUNK})
    const large = blobOf(3 * CHUNK)
    await pusher.pushBlob('team/app', large.desc, large.read)
    expect(reg.count('PATCH', /\/blobs\/uploads\//)).toBe(2)
    expect(reg.blobs.get(large.desc.digest)?.equals(large.bytes)).toBe(true)
  })

  it('mounts a blob from another repository, and uploads through the session a declined mount opened', async () => {
    const {reg, pusher} = await setup({auth: 'bearer'})
    const b = blobOf(20_000)
    await pusher.pushBlob('team/a', b.desc, b.read)
    reg.requests.length = 0
    expect(await pusher.pushBlob('team/b', b.desc, b.read, 'team/a')).toBe('mounted')
    expect(uploads(reg).filter((u) => !u.endsWith('401'))).toEqual(['POST 201'])
    expect(reg.repos.get('team/b')!.blobs.has(b.desc.digest)).toBe(true)

    // Not in team/a: the registry declines (202 with a session) and the blob goes through that session.
    const c = blobOf(20_000)
    reg.requests.length = 0
    expect(await pusher.pushBlob('team/c', c.desc, c.read, 'team/a')).toBe('uploaded')
    expect(uploads(reg).filter((u) => !u.endsWith('401'))).toEqual(['POST 202', 'PUT 201'])
    expect(reg.blobs.get(c.desc.digest)?.equals(c.bytes)).toBe(true)
  })

  it('a blob whose bytes are not its digest is refused by the registry and kept nowhere', async () => {
    const {reg, pusher} = await setup()
    for (const size of [10_000, 2 * CHUNK + 5]) {
      const b = blobOf(size)
      const wrong = {...b.desc, digest: sha256Digest('something else')}
      const err = await pusher.pushBlob('team/app', wrong, b.read).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(RegistryError)
      expect(err).toMatchObject({status: 400, codes: ['DIGEST_INVALID'], host: reg.host})
      expect(reg.blobs.has(wrong.digest)).toBe(false)
    }
  })

  it("refuses a closing PUT whose Docker-Content-Digest is not the blob's", async () => {
    const {pusher} = await setup({faults: [{method: 'PUT', path: /\/blobs\/uploads\//, action: 'wrong-digest'}]})
    const b = blobOf(1000)
    await expect(pusher.pushBlob('team/app', b.desc, b.read)).rejects.toThrow(IntegrityError)
  })

  it('sends a chunk again after a 503, resuming where the registry says the upload stands', async () => {
    const {reg, pusher} = await setup({
      faults: [{method: 'PATCH', path: /\/blobs\/uploads\//, nth: [2], action: {status: 503}}],
    })
    const large = blobOf(3 * CHUNK)
    let sent = 0
    await pusher.pushBlob('team/app', large.desc, large.read, undefined, (n) => (sent += n))
    expect(uploads(reg)).toEqual(['POST 202', 'PATCH 202', 'PATCH 503', 'GET 204', 'PATCH 202', 'PATCH 202', 'PUT 201'])
    expect(reg.blobs.get(large.desc.digest)?.equals(large.bytes)).toBe(true)
    // The failed attempt's bytes were taken back from the progress count.
    expect(sent).toBe(large.bytes.length)
  })

  it('resumes after a connection reset in the middle of a chunk', async () => {
    const {reg, pusher} = await setup({
      faults: [{method: 'PATCH', path: /\/blobs\/uploads\//, nth: [3], action: 'reset'}],
    })
    const large = blobOf(3 * CHUNK)
    await pusher.pushBlob('team/app', large.desc, large.read)
    expect(uploads(reg).filter((u) => u.startsWith('GET'))).toEqual(['GET 204'])
    expect(reg.count('PATCH', /\/blobs\/uploads\//)).toBe(4)
    expect(reg.blobs.get(large.desc.digest)?.equals(large.bytes)).toBe(true)
  })

  it('starts a new session when the registry lost the upload', async () => {
    const {reg, pusher} = await setup({
      faults: [
        {method: 'PATCH', path: /\/blobs\/uploads\//, nth: [2], action: {status: 404, code: 'BLOB_UPLOAD_UNKNOWN'}},
      ],
    })
    const large = blobOf(2 * CHUNK + 1)
    await pusher.pushBlob('team/app', large.desc, large.read)
    expect(uploads(reg)).toEqual([
      'POST 202',
      'PATCH 202',
      'PATCH 404',
      'POST 202',
      'PATCH 202',
      'PATCH 202',
      'PATCH 202',
      'PUT 201',
    ])
    expect(reg.blobs.get(large.desc.digest)?.equals(large.bytes)).toBe(true)
  })

  it('puts a manifest by tag after its blobs, refused before them, and refuses a Docker-Content-Digest not its own', async () => {
    const {reg, pusher} = await setup()
    const img = smallImage()
    await expect(pusher.putManifest('team/app', '1.0', img.manifest, MediaType.ociManifest)).rejects.toMatchObject({
      status: 400,
      codes: ['MANIFEST_BLOB_UNKNOWN'],
    })
    for (const [bytes, d] of [
      [img.config, img.descs.config],
      [img.layer, img.descs.layer],
    ] as const) {
      await pusher.pushBlob('team/app', d, (o, l) => Readable.from([bytes.subarray(o, o + l)]))
    }
    expect(await pusher.putManifest('team/app', '1.0', img.manifest, MediaType.ociManifest)).toBe(
      img.descs.manifest.digest,
    )
    expect(await pusher.manifestDigest('team/app', '1.0')).toBe(img.descs.manifest.digest)
    expect(reg.manifests.get(img.descs.manifest.digest)).toEqual({
      bytes: img.manifest,
      mediaType: MediaType.ociManifest,
    })

    reg.addFault({method: 'PUT', path: /\/manifests\/2\.0$/, action: 'wrong-digest'})
    await expect(pusher.putManifest('team/app', '2.0', img.manifest, MediaType.ociManifest)).rejects.toThrow(
      IntegrityError,
    )
  })
})
