import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {RegistryClient} from '../../src/lib/registry/client.js'
import {pushImage} from '../helpers/images.js'
import {pushFallbackIndex, pushReferrer, sbomArtifact} from '../helpers/referrers.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'

// The registry client's listing calls against the real distribution registry,
// which paginates tags/list and _catalog with Link headers and has no
// referrers API (so the referrers tag schema is what it serves).
describe('registry client: tags, catalog, referrers', () => {
  let reg: RegistryServer
  let client: RegistryClient
  const policy = {attempts: 2, baseDelayMs: 5, maxDelayMs: 10}

  beforeAll(async () => {
    reg = await startRegistry()
    for (const tag of ['v1', 'v2', 'v3', 'latest']) await pushImage(reg, {repository: 'team/a', tag, layerSize: 64})
    await pushImage(reg, {repository: 'team/b', tag: '1.0', layerSize: 64})
    await pushImage(reg, {repository: 'other/c', tag: '1.0', layerSize: 64})
    client = new RegistryClient({registry: reg.host, dockerConfig: false, policy})
  })

  afterAll(async () => {
    await reg?.stop()
  })

  it('lists every tag, following Link pages', async () => {
    expect((await client.listTags('team/a', {pageSize: 1})).sort()).toEqual(['latest', 'v1', 'v2', 'v3'])
    expect((await client.listTags('team/a')).sort()).toEqual(['latest', 'v1', 'v2', 'v3'])
  })

  it('names a repository the registry does not have', async () => {
    await expect(client.listTags('team/none')).rejects.toMatchObject({status: 404, codes: ['NAME_UNKNOWN']})
  })

  it('lists every repository of the catalog, page after page', async () => {
    expect((await client.catalog({pageSize: 2})).sort()).toEqual(['other/c', 'team/a', 'team/b'])
  })

  it('finds referrers through the referrers tag schema where there is no referrers API, filtered by artifact type', async () => {
    const image = await pushImage(reg, {repository: 'team/signed', tag: 'v1', layerSize: 64})
    expect(await client.referrers('team/signed', image.digest)).toEqual([])
    const sbom = sbomArtifact({digest: image.digest, mediaType: image.mediaType, size: image.manifestBytes.length})
    await pushReferrer(reg, 'team/signed', sbom)
    await pushFallbackIndex(reg, 'team/signed', image.digest, [sbom])
    const found = await client.referrers('team/signed', image.digest)
    expect(found).toEqual([
      {mediaType: sbom.mediaType, digest: sbom.digest, size: sbom.size, artifactType: sbom.artifactType},
    ])
    expect(await client.referrers('team/signed', image.digest, sbom.artifactType)).toHaveLength(1)
    expect(await client.referrers('team/signed', image.digest, 'application/x-other')).toEqual([])
  })
})
