import {join} from 'node:path'

import {ListObjectsV2Command, S3Client} from '@aws-sdk/client-s3'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {importS3} from '../../src/lib/importers/s3.js'
import {fileData, type FixtureFile, makeBundle, sha256Hex} from '../helpers/bundle-fixture.js'
import {type S3Server, startRgw} from '../helpers/rgw.js'
import {makeTempDir} from '../helpers/tmp.js'

// Server-backed (Ceph RGW on loopback): binaries and packages share one key space under the prefix.
describe('importS3 with a binary and a package at one path', () => {
  let s3: S3Server
  beforeAll(async () => {
    s3 = await startRgw()
  }, 120_000)
  afterAll(async () => {
    await s3?.stop()
  })

  it('uploads the shared file once and reports it once', async () => {
    const work = await makeTempDir('s3-shared-')
    const shared: FixtureFile = {path: 'example.com/tools/both', data: fileData(100_000), executable: true}
    const other: FixtureFile = {path: 'example.com/tools/other', data: fileData(1000), kind: 'package'}
    const b = await makeBundle(join(work, 'bundle'), [shared, {...shared, executable: false, kind: 'package'}, other])
    const r = await importS3(b.dir, {
      endpoint: s3.endpoint,
      bucket: 'shared',
      prefix: 'p',
      region: s3.region,
      createBucket: true,
      credentials: {accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey, source: 'flags'},
    })
    expect(r.files).toEqual([
      {path: `p/${shared.path}`, size: shared.data.length, sha256: sha256Hex(shared.data), action: 'written'},
      {path: `p/${other.path}`, size: other.data.length, sha256: sha256Hex(other.data), action: 'written'},
    ])
    expect(r.written).toBe(2)
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: {accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey},
    })
    try {
      const listed = await client.send(new ListObjectsV2Command({Bucket: 'shared'}))
      expect(listed.Contents?.map((o) => o.Key).sort()).toEqual([`p/${shared.path}`, `p/${other.path}`])
    } finally {
      client.destroy()
    }
  })
})
