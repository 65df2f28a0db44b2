import {spawn} from 'node:child_process'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutBucketPolicyCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {openBundle} from '../../src/lib/bundle/format/open-bundle.js'
import {importFiles} from '../../src/lib/importers/file-import.js'
import {objectKey} from '../../src/lib/targets/s3/s3-client.js'
import {S3Sink} from '../../src/lib/targets/s3/s3-sink.js'
import {silentProgress} from '../../src/lib/ui/index.js'
import {
  fileData,
  type FixtureFile,
  hostileArchives,
  makeBundle,
  makeRawBundle,
  sha256Hex,
} from '../helpers/bundle-fixture.js'
import {runCli} from '../helpers/cli.js'
import {s3Client, type S3Server, startRgw} from '../helpers/rgw.js'
import {makeTempDir} from '../helpers/tmp.js'

const FILES: FixtureFile[] = [
  // Bigger than the 5 MiB part size used below: goes up as a multipart upload.
  {path: '127.0.0.1:8081/release/v1.29.0/bin/linux/amd64/kubeadm', data: fileData(12_000_000), executable: true},
  {path: '127.0.0.1:8081/release/v1.29.0/bin/linux/amd64/kubectl', data: fileData(2_000_000), executable: true},
  {path: 'get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz', data: fileData(300_000)},
  {path: 'example.com/tools/nerdctl-1.7.0-linux-amd64.tar.gz', data: fileData(200_000), kind: 'package'},
  {path: 'charts/nginx-15.1.0.tgz', data: fileData(30_000), kind: 'chart'},
]

describe('airlock import s3 (Ceph RGW)', () => {
  let s3: S3Server
  let client: S3Client
  let work: string
  let bundle: string
  const creds = () => ['--access-key', s3.accessKey, '--secret-key', s3.secretKey, '--region', s3.region]

  async function object(bucket: string, key: string): Promise<{sha: string; meta?: string; size?: number}> {
    const got = await client.send(new GetObjectCommand({Bucket: bucket, Key: key}))
    const body = Buffer.from(await got.Body!.transformToByteArray())
    return {sha: sha256Hex(body), meta: got.Metadata?.sha256, size: got.ContentLength}
  }

  beforeAll(async () => {
    s3 = await startRgw()
    client = new S3Client({
      endpoint: s3.endpoint,
      region: s3.region,
      forcePathStyle: true,
      credentials: {accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey},
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
    work = await makeTempDir('e2e-import-s3-')
    bundle = (await makeBundle(join(work, 'bundle'), FILES)).dir
  })
  afterAll(async () => {
    client?.destroy()
    await s3?.stop()
  })

  it('uploads every file as <prefix>/<path> with its sha256, and never prints the secret', async () => {
    const clusterConfig = join(work, 'clusterConfig.yaml')
    await writeFile(clusterConfig, '# seed\nspec:\n  binaries:   # here\n    type: internet\n  version: 1 # keep\n')
    const r = await runCli([
      'import',
      's3',
      bundle,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'offline',
      '--prefix',
      '/k8s/',
      '--create-bucket',
      ...creds(),
      '--part-size',
      '5',
      '--concurrency',
      '3',
      '--cluster-config',
      clusterConfig,
      '--json',
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout + r.stderr).not.toContain(s3.secretKey)
    const out = JSON.parse(r.stdout)
    expect(out.endpoint).toBe(`${s3.endpoint}/offline/k8s`)
    expect(out.counts).toEqual({
      files: FILES.length,
      written: FILES.length,
      skipped: 0,
      bytesWritten: FILES.reduce((n, f) => n + f.data.length, 0),
    })
    expect(out.items).toEqual(
      FILES.map((f) => ({path: `k8s/${f.path}`, size: f.data.length, sha256: sha256Hex(f.data), action: 'written'})),
    )
    for (const f of FILES) {
      expect(await object('offline', `k8s/${f.path}`)).toEqual({
        sha: sha256Hex(f.data),
        meta: sha256Hex(f.data),
        size: f.data.length,
      })
    }
    const listed = await client.send(new ListObjectsV2Command({Bucket: 'offline'}))
    expect(listed.KeyCount).toBe(FILES.length)
    const yaml = await readFile(clusterConfig, 'utf8')
    expect(yaml).toBe(
      `# seed\nspec:\n  binaries:   # here\n    type: external\n    externalRepoEndpoint: ${s3.endpoint}/offline/k8s\n  version: 1 # keep\n`,
    )
    expect(yaml).not.toContain(s3.secretKey)
  })

  it('writes nothing the second time (HEAD: same size and sha256)', async () => {
    const r = await runCli([
      'import',
      's3',
      bundle,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'offline',
      '--prefix',
      'k8s',
      ...creds(),
      '--part-size',
      '5',
      '--json',
    ])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.counts.written).toBe(0)
    expect(out.counts.skipped).toBe(FILES.length)
  })

  it('takes credentials from the environment or ~/.aws/credentials, and writes them to clusterConfig.yaml only when asked', async () => {
    const home = await makeTempDir('e2e-aws-home-')
    await mkdir(join(home, '.aws'))
    await writeFile(
      join(home, '.aws', 'credentials'),
      `[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n[seed]\naws_access_key_id = ${s3.accessKey}\naws_secret_access_key = ${s3.secretKey}\n`,
    )
    const base = [
      'import',
      's3',
      bundle,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'profile-bucket',
      '--create-bucket',
      '--region',
      s3.region,
      '--json',
    ]
    const env = {HOME: home, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: ''}
    const viaProfile = await runCli([...base, '--profile', 'seed'], {env})
    expect(viaProfile.code, viaProfile.stderr).toBe(0)
    const viaEnvProfile = await runCli(base, {env: {...env, AWS_PROFILE: 'seed'}})
    expect(viaEnvProfile.code, viaEnvProfile.stderr).toBe(0)
    expect(JSON.parse(viaEnvProfile.stdout).counts.skipped).toBe(FILES.length)
    const clusterConfig = join(work, 'with-creds.yaml')
    await writeFile(clusterConfig, 'spec:\n  a: 1\n')
    const viaEnv = await runCli(
      [...base, '--cluster-config', clusterConfig, '--write-credentials', '--repo-endpoint', 'http://files.local/x'],
      {
        env: {HOME: home, AWS_ACCESS_KEY_ID: s3.accessKey, AWS_SECRET_ACCESS_KEY: s3.secretKey},
      },
    )
    expect(viaEnv.code, viaEnv.stderr).toBe(0)
    expect(viaEnv.stdout + viaEnv.stderr).not.toContain(s3.secretKey)
    expect(await readFile(clusterConfig, 'utf8')).toBe(
      `spec:\n  a: 1\n  binaries:\n    type: external\n    externalRepoEndpoint: http://files.local/x\n    externalRepoUsername: ${s3.accessKey}\n    externalRepoPassword: ${s3.secretKey}\n`,
    )
    const wrong = await runCli(base, {env: {...env, AWS_PROFILE: 'default'}})
    expect(wrong.code).toBe(1)
    expect(wrong.stdout + wrong.stderr).not.toContain('nope')
  })

  it('a wrong secret key reads as access denied, with what to check', async () => {
    const r = await runCli([
      'import',
      's3',
      bundle,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'not-there',
      '--access-key',
      s3.accessKey,
      '--secret-key',
      'wrong-secret',
      '--region',
      s3.region,
    ])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/^Error: .*: access denied by 127\.0\.0\.1:\d+ \(HTTP 403( \w+)?\)$/m)
    expect(r.stderr).not.toMatch(/UnknownError|answered 403 HTTP 403/)
    expect(r.stderr).toMatch(/Hint: check the access key and the secret key/)
    expect(r.stdout + r.stderr).not.toContain('wrong-secret')
  })

  it('refuses a missing bucket without --create-bucket', async () => {
    const r = await runCli(['import', 's3', bundle, '--endpoint', s3.endpoint, '--bucket', 'not-there', ...creds()])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/--create-bucket/)
  })

  it('--create-bucket names the region as the location: RGW takes its zonegroup (default), refuses another with a hint', async () => {
    const base = [
      'import',
      's3',
      bundle,
      '--endpoint',
      s3.endpoint,
      '--create-bucket',
      '--access-key',
      s3.accessKey,
      '--secret-key',
      s3.secretKey,
      '--json',
    ]
    const ok = await runCli([...base, '--bucket', 'zonegroup-default', '--region', 'default'])
    expect(ok.code, ok.stderr).toBe(0)
    expect((await client.send(new GetBucketLocationCommand({Bucket: 'zonegroup-default'}))).LocationConstraint).toBe(
      'default',
    )
    const far = await runCli([...base, '--bucket', 'far-away', '--region', 'eu-west-1'])
    expect(far.code).toBe(1)
    expect(far.stderr).toMatch(/create bucket far-away: .*InvalidLocationConstraint/)
    expect(far.stderr).toMatch(/Hint: --region eu-west-1 is sent as the new bucket's location/)
    expect(far.stdout + far.stderr).not.toContain(s3.secretKey)
  })

  it('a SIGKILL in the middle leaves only complete objects; a re-run completes', async () => {
    const big: FixtureFile[] = Array.from({length: 12}, (_, i) => ({
      path: `big.example/f${i}.bin`,
      data: fileData(i % 3 === 0 ? 7_000_000 : 1_500_000, i),
    }))
    const b = await makeBundle(join(work, 'big'), big)
    const args = [
      'import',
      's3',
      b.dir,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'killed',
      '--create-bucket',
      ...creds(),
      '--part-size',
      '5',
      '--quiet',
    ]
    const child = spawn(process.execPath, ['bin/run.js', ...args], {stdio: 'ignore'})
    const exited = new Promise<NodeJS.Signals | null>((r) => child.once('exit', (_code, signal) => r(signal)))
    for (let i = 0; i < 600; i++) {
      const n = await client.send(new ListObjectsV2Command({Bucket: 'killed'})).then(
        (l) => l.KeyCount ?? 0,
        () => 0,
      )
      if (n >= 2) break
      await new Promise((r) => setTimeout(r, 20))
    }
    child.kill('SIGKILL')
    // Killed, not finished before the kill: otherwise this test would prove nothing.
    expect(await exited).toBe('SIGKILL')
    const listed = (await client.send(new ListObjectsV2Command({Bucket: 'killed'}))).Contents ?? []
    expect(listed.length).toBeLessThan(big.length)
    for (const o of listed) {
      const f = big.find((x) => x.path === o.Key)!
      expect((await object('killed', o.Key!)).sha).toBe(sha256Hex(f.data))
    }
    const r = await runCli(args.filter((a) => a !== '--quiet').concat('--json'))
    expect(r.code, r.stderr).toBe(0)
    for (const f of big) expect((await object('killed', f.path)).sha).toBe(sha256Hex(f.data))
  })

  it('--public-read lets an anonymous GET read the prefix (and only it); without it --cluster-config warns', async () => {
    const key = `pub/${FILES[2].path}`
    const anonymous = async (bucket: string, k: string) => {
      const res = await fetch(`${s3.endpoint}/${bucket}/${k}`)
      return {status: res.status, sha: res.ok ? sha256Hex(Buffer.from(await res.arrayBuffer())) : undefined}
    }
    const clusterConfig = join(work, 'public-clusterConfig.yaml')
    await writeFile(clusterConfig, 'spec:\n  binaries:\n    type: internet\n')

    // Private: the installer would get 403, and the import says so.
    const priv = await runCli([
      'import',
      's3',
      bundle,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'private',
      '--prefix',
      'pub',
      '--create-bucket',
      ...creds(),
      '--cluster-config',
      clusterConfig,
    ])
    expect(priv.code, priv.stderr).toBe(0)
    expect((await anonymous('private', key)).status).toBe(403)
    expect(priv.stderr).toContain(`an anonymous GET of ${s3.endpoint}/private/pub/`)
    expect(priv.stderr).toContain('--public-read')

    const pub = await runCli([
      'import',
      's3',
      bundle,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'public',
      '--prefix',
      'pub',
      '--create-bucket',
      ...creds(),
      '--public-read',
      '--cluster-config',
      clusterConfig,
    ])
    expect(pub.code, pub.stderr).toBe(0)
    expect(pub.stderr).not.toContain('anonymous GET')
    expect(await anonymous('public', key)).toEqual({status: 200, sha: sha256Hex(FILES[2].data)})
    // Outside the prefix stays private.
    await client.send(new PutObjectCommand({Bucket: 'public', Key: 'secret/x.txt', Body: 'x'}))
    expect((await anonymous('public', 'secret/x.txt')).status).toBe(403)
  })

  it('aborts the multipart uploads a killed import left for its keys, and says so; others stay', async () => {
    await client.send(new CreateBucketCommand({Bucket: 'leftover'}))
    const ours = `k8s/${FILES[0].path}`
    const theirs = 'k8s/someone-else/upload.bin'
    const open = async (Key: string) => {
      const {UploadId} = await client.send(
        new CreateMultipartUploadCommand({Bucket: 'leftover', Key, Metadata: {sha256: sha256Hex(FILES[0].data)}}),
      )
      await client.send(
        new UploadPartCommand({
          Bucket: 'leftover',
          Key,
          UploadId,
          PartNumber: 1,
          Body: FILES[0].data.subarray(0, 5 * 1024 * 1024),
        }),
      )
    }
    await open(ours)
    await open(theirs)
    const r = await runCli([
      'import',
      's3',
      bundle,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'leftover',
      '--prefix',
      'k8s',
      ...creds(),
      '--part-size',
      '5',
    ])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toContain(`aborted 1 unfinished multipart upload an earlier import left in leftover: ${ours}`)
    const left = await client.send(new ListMultipartUploadsCommand({Bucket: 'leftover'}))
    expect((left.Uploads ?? []).map((u) => u.Key)).toEqual([theirs])
    expect((await object('leftover', ours)).sha).toBe(sha256Hex(FILES[0].data))
  })

  it('lists the prefix once: a first import sends no HEAD (a PUT a file), a second asks only the objects of the right size; a key that may not list, or a crowded prefix, asks each', async () => {
    const small = Array.from({length: 24}, (_, i): FixtureFile => ({
      path: `files.example/d${i % 3}/f${i}`,
      data: fileData(1000 + i),
    }))
    const b = await makeBundle(join(work, 'listed-bundle'), small)
    /** An import of `dir` through a client that counts the requests it sends, by command. */
    const importCounted = async (bucket: string, dir = b.dir) => {
      const bundle = await openBundle(dir)
      const {lock} = bundle
      const keys = new Set(lock.files.map((f) => objectKey('p', f.path)))
      const counting = s3Client(s3.endpoint)
      const sent = new Map<string, number>()
      counting.middlewareStack.add(
        (next, context) => async (args) => {
          sent.set(context.commandName!, (sent.get(context.commandName!) ?? 0) + 1)
          return next(args)
        },
        {step: 'initialize'},
      )
      try {
        const sink = new S3Sink(counting, {
          bucket,
          createBucket: true,
          prefix: 'p',
          host: new URL(s3.endpoint).host,
          concurrency: 4,
          keys,
        })
        const r = await importFiles(bundle, sink, {progress: silentProgress})
        return {written: r.written, sent: Object.fromEntries(sent)}
      } finally {
        counting.destroy()
      }
    }
    const first = await importCounted('listed')
    expect(first.written).toBe(small.length)
    expect(first.sent).toMatchObject({ListObjectsV2Command: 1, PutObjectCommand: small.length})
    expect(first.sent.HeadObjectCommand).toBeUndefined()
    for (const f of small) expect((await object('listed', `p/${f.path}`)).sha).toBe(sha256Hex(f.data))

    // One object gone, one of the same size with other bytes: only same-size objects are asked, and the two are put again.
    await client.send(new DeleteObjectCommand({Bucket: 'listed', Key: `p/${small[0].path}`}))
    await client.send(
      new PutObjectCommand({
        Bucket: 'listed',
        Key: `p/${small[1].path}`,
        Body: Buffer.alloc(small[1].data.length),
        Metadata: {sha256: '0'.repeat(64)},
      }),
    )
    const second = await importCounted('listed')
    expect(second.written).toBe(2)
    expect(second.sent).toMatchObject({
      ListObjectsV2Command: 1,
      HeadObjectCommand: small.length - 1,
      PutObjectCommand: 2,
    })
    expect((await object('listed', `p/${small[1].path}`)).sha).toBe(sha256Hex(small[1].data))

    // The listing refused (403): a HEAD for each file, as without a listing, and the import still completes.
    await client.send(new CreateBucketCommand({Bucket: 'unlisted'}))
    // Only a listing of the prefix is denied: HeadBucket (which needs s3:ListBucket too) names no prefix.
    const deny = {
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Deny',
          Principal: '*',
          Action: ['s3:ListBucket'],
          Resource: ['arn:aws:s3:::unlisted'],
          Condition: {StringLike: {'s3:prefix': ['p/*']}},
        },
      ],
    }
    await client.send(new PutBucketPolicyCommand({Bucket: 'unlisted', Policy: JSON.stringify(deny)}))
    const denied = await importCounted('unlisted')
    expect(denied.written).toBe(small.length)
    expect(denied.sent).toMatchObject({
      ListObjectsV2Command: 1,
      HeadObjectCommand: small.length,
      PutObjectCommand: small.length,
    })

    // A prefix holding far more than the bundle: the listing stops once it took as many requests as a HEAD per file.
    await client.send(new CreateBucketCommand({Bucket: 'crowded'}))
    const others = Array.from({length: 1001}, (_, i) => `p/others/o${i}`)
    for (let i = 0; i < others.length; i += 50) {
      await Promise.all(
        others.slice(i, i + 50).map((Key) => client.send(new PutObjectCommand({Bucket: 'crowded', Key, Body: 'x'}))),
      )
    }
    const one = await makeBundle(join(work, 'one-file-bundle'), small.slice(0, 1))
    const crowded = await importCounted('crowded', one.dir)
    expect(crowded.written).toBe(1)
    expect(crowded.sent).toMatchObject({ListObjectsV2Command: 1, HeadObjectCommand: 1, PutObjectCommand: 1})
  }, 120_000)

  it('refuses hostile bundles and uploads nothing they carry', async () => {
    for (const h of hostileArchives()) {
      const dir = await makeTempDir('e2e-s3-hostile-')
      const b = await makeRawBundle(join(dir, 'bundle'), h.listed, h.tgz())
      const r = await runCli([
        'import',
        's3',
        b.dir,
        '--endpoint',
        s3.endpoint,
        '--bucket',
        'hostile',
        '--create-bucket',
        ...creds(),
      ])
      expect(r.code, h.name).toBeGreaterThan(0)
    }
    const listed =
      (await client.send(new ListObjectsV2Command({Bucket: 'hostile'})).catch(() => ({Contents: []}))).Contents ?? []
    // At most the one well-formed file each hostile archive starts with, and it must be whole.
    for (const o of listed) expect(o.Key).toBe('h.example/ok.bin')
    if (listed.length > 0) {
      const head = await client.send(new HeadObjectCommand({Bucket: 'hostile', Key: 'h.example/ok.bin'}))
      expect(head.Metadata?.sha256).toBe(sha256Hex('fine\n'))
    }
  })
})
