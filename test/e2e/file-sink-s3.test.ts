import {GetObjectCommand} from '@aws-sdk/client-s3'
import {afterAll, beforeAll} from 'vitest'

import {S3Sink} from '../../src/lib/targets/s3/s3-sink.js'
import {fileSinkContract} from '../helpers/file-sink-contract.js'
import {type S3Server, startRgw} from '../helpers/rgw.js'

// The FileSink promises (test/helpers/file-sink-contract.ts) held by a bucket on a real Ceph RGW.

let s3: S3Server
let buckets = 0

beforeAll(async () => {
  s3 = await startRgw()
})
afterAll(async () => {
  await s3?.stop()
})

fileSinkContract('S3Sink', async () => {
  const client = s3.client()
  const bucket = `contract-${++buckets}`
  const host = new URL(s3.endpoint).host
  const make = () => new S3Sink(client, {bucket, createBucket: true, prefix: 'p', host, concurrency: 4})
  return {
    sink: make(),
    again: make,
    read: async (path) => {
      try {
        const got = await client.send(new GetObjectCommand({Bucket: bucket, Key: `p/${path}`}))
        return Buffer.from(await got.Body!.transformToByteArray())
      } catch {
        return undefined
      }
    },
  }
})
