import {join} from 'node:path'

import {GetObjectCommand, ListObjectsV2Command, type S3Client} from '@aws-sdk/client-s3'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {fileData, type FixtureFile, makeBundle, sha256Hex} from '../helpers/bundle-fixture.js'
import {runCli} from '../helpers/cli.js'
import {type S3Server, startRgw} from '../helpers/rgw.js'
import {makeTempDir} from '../helpers/tmp.js'

const FILES: FixtureFile[] = [
  // Bigger than the 5 MiB part size used below: the multipart path goes over TLS too.
  {path: '127.0.0.1:8081/release/v1.29.0/bin/linux/amd64/kubeadm', data: fileData(6_000_000), executable: true},
  {path: 'get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz', data: fileData(300_000)},
  {path: 'example.com/tools/nerdctl-1.7.0-linux-amd64.tar.gz', data: fileData(200_000), kind: 'package'},
]

describe('airlock import s3 over TLS (Ceph RGW, beast ssl_endpoint)', () => {
  let s3: S3Server
  let client: S3Client
  let bundle: string
  const args = (bucket: string) => [
    'import',
    's3',
    bundle,
    '--endpoint',
    s3.endpoint,
    '--bucket',
    bucket,
    '--create-bucket',
    '--access-key',
    s3.accessKey,
    '--secret-key',
    s3.secretKey,
    '--region',
    s3.region,
    '--part-size',
    '5',
  ]

  async function keys(bucket: string): Promise<string[]> {
    const listed = await client.send(new ListObjectsV2Command({Bucket: bucket})).catch(() => ({Contents: []}))
    return (listed.Contents ?? []).map((o) => o.Key!).sort()
  }

  async function expectAllUploaded(bucket: string): Promise<void> {
    expect(await keys(bucket)).toEqual(FILES.map((f) => f.path).sort())
    for (const f of FILES) {
      const got = await client.send(new GetObjectCommand({Bucket: bucket, Key: f.path}))
      expect(sha256Hex(Buffer.from(await got.Body!.transformToByteArray()))).toBe(sha256Hex(f.data))
      expect(got.Metadata?.sha256).toBe(sha256Hex(f.data))
    }
  }

  beforeAll(async () => {
    s3 = await startRgw({tls: true})
    client = s3.client()
    const work = await makeTempDir('e2e-import-s3-tls-')
    bundle = (await makeBundle(join(work, 'bundle'), FILES)).dir
  })
  afterAll(async () => {
    client?.destroy()
    await s3?.stop()
  })

  it('serves HTTPS only, with a certificate from its own CA', () => {
    expect(s3.endpoint).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/)
    expect(s3.caFile).toBeTruthy()
  })

  it('without the CA: exit 1, names the host, no stack trace, no secret, nothing uploaded', async () => {
    const r = await runCli(args('no-ca'))
    expect(r.code, r.stderr).toBe(1)
    const host = new URL(s3.endpoint).host
    expect(r.stderr).toContain(host)
    expect(r.stderr).toMatch(/certificate/i)
    expect(r.stderr).toMatch(/Hint: .*--ca-file/)
    expect(r.stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m)
    expect(r.stdout + r.stderr).not.toContain(s3.secretKey)
    expect(await keys('no-ca')).toEqual([])
  })

  it('with --ca-file: uploads every file, and says nothing about --insecure', async () => {
    const r = await runCli([...args('with-ca'), '--ca-file', s3.caFile!, '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).not.toMatch(/insecure/i)
    expect(r.stdout + r.stderr).not.toContain(s3.secretKey)
    const out = JSON.parse(r.stdout)
    expect(out.counts.written).toBe(FILES.length)
    expect(out.endpoint).toBe(`${s3.endpoint}/with-ca`)
    await expectAllUploaded('with-ca')
  })

  it('with --insecure: uploads without the CA and says so on stderr', async () => {
    const r = await runCli([...args('insecure'), '--insecure', '--json'])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/--insecure/)
    expect(r.stderr).toContain(new URL(s3.endpoint).host)
    expect(r.stdout + r.stderr).not.toContain(s3.secretKey)
    expect(JSON.parse(r.stdout).counts.written).toBe(FILES.length)
    await expectAllUploaded('insecure')
  })
})
