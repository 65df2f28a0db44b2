import {afterEach, describe, expect, it} from 'vitest'

import {sha256Digest} from '../../src/lib/content/digest.js'
import {MediaType} from '../../src/lib/content/media-types.js'
import {cosignTag} from '../../src/lib/oci/cosign.js'
import {findReferrers} from '../../src/lib/pull/referrers.js'
import {RegistryClient} from '../../src/lib/registry/client.js'
import {referrersTag} from '../../src/lib/registry/referrers.js'
import {smallImage} from '../helpers/image-role-contracts.js'
import {type FakeRegistry, startFakeRegistry} from '../helpers/registry-fake.js'

// findReferrers against the in-process fake registry (test/helpers/registry-fake.ts): the fake is
// here because a real distribution registry cannot refuse tags/list alone (a pull-only token
// that may HEAD a tag but not list them). test/e2e/pull-images.test.ts and referrers.test.ts
// count the same requests against the real registry.

const started: FakeRegistry[] = []
afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()))
})

/** Two images in `team/app` (no referrers API, as distribution 2.8): the first with a cosign `.sig` tag and a tag-schema index. */
async function signedRepo(): Promise<{reg: FakeRegistry; signed: string; plain: string; sig: string; art: string}> {
  const reg = await startFakeRegistry({referrersApi: false})
  started.push(reg)
  const imgs = [smallImage(), smallImage()]
  for (const [i, img] of imgs.entries()) {
    reg.seedBlob('team/app', img.config)
    reg.seedBlob('team/app', img.layer)
    reg.seedManifest('team/app', img.manifest, MediaType.ociManifest, `${i}`)
  }
  const signed = imgs[0].descs.manifest.digest
  const empty = Buffer.from('{}')
  reg.seedBlob('team/app', empty)
  const emptyDesc = {mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(empty), size: 2}
  const sig = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: {...emptyDesc, mediaType: 'application/vnd.dev.cosign.signature'},
      layers: [],
    }),
  )
  reg.seedManifest('team/app', sig, MediaType.ociManifest, cosignTag(signed, 'sig'))
  const subject = {mediaType: MediaType.ociManifest, digest: signed, size: imgs[0].manifest.length}
  const art = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType: 'application/spdx+json',
      config: emptyDesc,
      layers: [],
      subject,
    }),
  )
  reg.seedManifest('team/app', art, MediaType.ociManifest)
  const index = {
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      {
        mediaType: MediaType.ociManifest,
        digest: sha256Digest(art),
        size: art.length,
        artifactType: 'application/spdx+json',
      },
    ],
  }
  reg.seedManifest('team/app', Buffer.from(JSON.stringify(index)), MediaType.ociIndex, referrersTag(signed))
  return {reg, signed, plain: imgs[1].descs.manifest.digest, sig: sha256Digest(sig), art: sha256Digest(art)}
}

const client = (reg: FakeRegistry) =>
  new RegistryClient({registry: reg.host, dockerConfig: false, policy: {attempts: 2, baseDelayMs: 1, maxDelayMs: 5}})
const headsOfDigestTags = (reg: FakeRegistry) => reg.count('HEAD', /\/manifests\/sha256-/)

describe('findReferrers', () => {
  it('reads the tag list once per repository and HEADs only the sha256-* tags it holds', async () => {
    const {reg, signed, plain, sig, art} = await signedRepo()
    const c = client(reg)
    const [found, none] = await Promise.all([findReferrers(c, 'team/app', signed), findReferrers(c, 'team/app', plain)])
    expect(found.map((f) => [f.desc.digest, f.tag])).toEqual([
      [art, undefined],
      [sig, cosignTag(signed, 'sig')],
    ])
    expect(none).toEqual([])
    expect(await findReferrers(c, 'team/app', sha256Digest(Buffer.from('x')))).toEqual([])
    expect(reg.count('GET', /\/tags\/list/)).toBe(1)
    // The tag-schema index and the .sig of the signed image: nothing for the other subjects.
    expect(headsOfDigestTags(reg)).toBe(2)
  })

  it('falls back to a HEAD per tag when the registry refuses to list the tags, and finds the same', async () => {
    const {reg, signed, plain, sig, art} = await signedRepo()
    reg.addFault({method: 'GET', path: /\/tags\/list/, action: {status: 403, code: 'DENIED'}})
    const c = client(reg)
    const found = await findReferrers(c, 'team/app', signed)
    expect(found.map((f) => [f.desc.digest, f.tag])).toEqual([
      [art, undefined],
      [sig, cosignTag(signed, 'sig')],
    ])
    expect(await findReferrers(c, 'team/app', plain)).toEqual([])
    // Refused once: the run does not ask again for every subject.
    expect(reg.count('GET', /\/tags\/list/)).toBe(1)
    expect(headsOfDigestTags(reg)).toBe(8)
  })
})
