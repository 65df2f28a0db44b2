import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {S3Client} from '@aws-sdk/client-s3'
import {describe, expect, it} from 'vitest'

import {
  bucketUrl,
  checkS3Target,
  createBucketInput,
  ensureBucket,
  normalizePrefix,
  objectKey,
} from '../../../src/lib/targets/s3/s3-client.js'
import {parseIni, resolveS3Credentials} from '../../../src/lib/targets/s3/s3-credentials.js'
import {silentProgress} from '../../../src/lib/ui/index.js'
import {makeTempDir} from '../../helpers/tmp.js'

describe('S3 target options', () => {
  it('builds keys and the endpoint the cluster fetches from', () => {
    expect(normalizePrefix('/k8s/offline/')).toBe('k8s/offline')
    expect(objectKey('k8s', 'a.example/x')).toBe('k8s/a.example/x')
    expect(objectKey('', 'a.example/x')).toBe('a.example/x')
    expect(bucketUrl('http://127.0.0.1:7480/', 'offline', '/k8s/')).toBe('http://127.0.0.1:7480/offline/k8s')
    expect(bucketUrl('https://s3.local', 'offline')).toBe('https://s3.local/offline')
  })

  it('allows plain HTTP to loopback, elsewhere only with --insecure', () => {
    expect(checkS3Target({endpoint: 'http://127.0.0.1:7480', bucket: 'offline'}).host).toBe('127.0.0.1:7480')
    expect(() => checkS3Target({endpoint: 'http://rgw.local:7480', bucket: 'offline'})).toThrow(/--insecure/)
    expect(checkS3Target({endpoint: 'http://rgw.local:7480', bucket: 'offline', insecure: true}).host).toBe(
      'rgw.local:7480',
    )
    expect(() => checkS3Target({endpoint: 'https://ak:sk@rgw.local', bucket: 'offline'})).toThrow(/credentials/)
    expect(() => checkS3Target({endpoint: 'rgw.local', bucket: 'offline'})).toThrow(/not a URL/)
    expect(() => checkS3Target({endpoint: 'https://rgw.local', bucket: 'Bad_Bucket'})).toThrow(/bucket/)
  })
})

describe('resolveS3Credentials', () => {
  it('prefers flags, then the environment, then the credentials file profile', async () => {
    const home = await makeTempDir('aws-home-')
    await mkdir(join(home, '.aws'))
    await writeFile(
      join(home, '.aws', 'credentials'),
      '[default]\naws_access_key_id = D\naws_secret_access_key = DS\n[seed]\naws_access_key_id=S\naws_secret_access_key=SS\naws_session_token = T\n',
    )
    const env = {HOME: home, AWS_ACCESS_KEY_ID: 'E', AWS_SECRET_ACCESS_KEY: 'ES'}
    expect(await resolveS3Credentials({accessKey: 'F', secretKey: 'FS'}, env)).toMatchObject({
      accessKeyId: 'F',
      source: 'flags',
    })
    expect(await resolveS3Credentials({}, env)).toMatchObject({
      accessKeyId: 'E',
      secretAccessKey: 'ES',
      source: 'environment',
    })
    expect(await resolveS3Credentials({}, {HOME: home})).toMatchObject({accessKeyId: 'D', secretAccessKey: 'DS'})
    expect(await resolveS3Credentials({}, {HOME: home, AWS_PROFILE: 'seed'})).toMatchObject({
      accessKeyId: 'S',
      sessionToken: 'T',
    })
    expect(await resolveS3Credentials({profile: 'seed'}, env)).toMatchObject({accessKeyId: 'S'})
    await expect(resolveS3Credentials({profile: 'nope'}, {HOME: home})).rejects.toMatchObject({kind: 'usage'})
    await expect(resolveS3Credentials({accessKey: 'F'}, env)).rejects.toThrow(/go together/)
    const err = await resolveS3Credentials({}, {HOME: join(home, 'none')}).catch((e: Error) => e)
    expect((err as Error).message).toMatch(/no S3 credentials/)
  })

  it('parses INI sections, comments and spaces', () => {
    const ini = parseIni('; c\n# c\n[ a ]\nKey = v = w\n\n[b]\nx=1\n')
    expect(ini.get('a')?.get('key')).toBe('v = w')
    expect(ini.get('b')?.get('x')).toBe('1')
  })
})

describe('creating the bucket', () => {
  interface Sent {
    method: string
    path: string
    body: string
  }

  // A client whose requests never leave the process: HEAD bucket answers 404, everything else 200,
  // and what would have gone on the wire is kept.
  function recordingClient(region: string): {client: S3Client; sent: Sent[]} {
    const sent: Sent[] = []
    const client = new S3Client({
      region,
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      credentials: {accessKeyId: 'AK', secretAccessKey: 'SK'},
      requestHandler: {
        async handle(req: {method: string; path: string; body?: unknown}) {
          const body =
            typeof req.body === 'string'
              ? req.body
              : req.body instanceof Uint8Array
                ? Buffer.from(req.body).toString()
                : ''
          sent.push({method: req.method, path: req.path, body})
          const statusCode = req.method === 'HEAD' ? 404 : 200
          return {response: {statusCode, headers: {}, body: new Uint8Array()}}
        },
      } as never,
    })
    return {client, sent}
  }

  it('names the region as LocationConstraint outside us-east-1, and sends no configuration in us-east-1', async () => {
    expect(createBucketInput('b', 'eu-west-1')).toEqual({
      Bucket: 'b',
      CreateBucketConfiguration: {LocationConstraint: 'eu-west-1'},
    })
    expect(createBucketInput('b', 'default')).toEqual({
      Bucket: 'b',
      CreateBucketConfiguration: {LocationConstraint: 'default'},
    })
    expect(createBucketInput('b', 'us-east-1')).toEqual({Bucket: 'b'})
    expect(createBucketInput('b')).toEqual({Bucket: 'b'})

    const far = recordingClient('eu-west-1')
    await ensureBucket(far.client, {bucket: 'offline', createBucket: true, region: 'eu-west-1'}, 'h', silentProgress)
    expect(far.sent.map((s) => `${s.method} ${s.path}`)).toEqual(['HEAD /offline/', 'PUT /offline/'])
    expect(far.sent[1].body).toMatch(
      /<CreateBucketConfiguration[^>]*><LocationConstraint>eu-west-1<\/LocationConstraint><\/CreateBucketConfiguration>/,
    )

    const east = recordingClient('us-east-1')
    await ensureBucket(east.client, {bucket: 'offline', createBucket: true, region: 'us-east-1'}, 'h', silentProgress)
    expect(east.sent.map((s) => `${s.method} ${s.path}`)).toEqual(['HEAD /offline/', 'PUT /offline/'])
    expect(east.sent[1].body).not.toMatch(/LocationConstraint/)
  })

  it('sends nothing but the HEAD without --create-bucket', async () => {
    const {client, sent} = recordingClient('eu-west-1')
    await expect(ensureBucket(client, {bucket: 'offline', region: 'eu-west-1'}, 'h', silentProgress)).rejects.toThrow(
      /--create-bucket|does not exist/,
    )
    expect(sent.map((s) => s.method)).toEqual(['HEAD'])
  })
})
