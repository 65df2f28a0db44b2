import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'

import {bucketUrl, checkS3Target, normalizePrefix, objectKey} from '../../src/lib/importers/s3.js'
import {parseIni, resolveS3Credentials} from '../../src/lib/importers/s3-credentials.js'
import {makeTempDir} from '../helpers/tmp.js'

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
    expect(checkS3Target({endpoint: 'http://rgw.local:7480', bucket: 'offline', insecure: true}).host).toBe('rgw.local:7480')
    expect(() => checkS3Target({endpoint: 'https://ak:sk@rgw.local', bucket: 'offline'})).toThrow(/credentials/)
    expect(() => checkS3Target({endpoint: 'rgw.local', bucket: 'offline'})).toThrow(/not a URL/)
    expect(() => checkS3Target({endpoint: 'https://rgw.local', bucket: 'Bad_Bucket'})).toThrow(/bucket/)
  })
})

describe('resolveS3Credentials', () => {
  it('prefers flags, then the environment, then the credentials file profile', async () => {
    const home = await makeTempDir('aws-home-')
    await mkdir(join(home, '.aws'))
    await writeFile(join(home, '.aws', 'credentials'), '[default]\naws_access_key_id = D\naws_secret_access_key = DS\n[seed]\naws_access_key_id=S\naws_secret_access_key=SS\naws_session_token = T\n')
    const env = {HOME: home, AWS_ACCESS_KEY_ID: 'E', AWS_SECRET_ACCESS_KEY: 'ES'}
    expect(await resolveS3Credentials({accessKey: 'F', secretKey: 'FS'}, env)).toMatchObject({accessKeyId: 'F', source: 'flags'})
    expect(await resolveS3Credentials({}, env)).toMatchObject({accessKeyId: 'E', secretAccessKey: 'ES', source: 'environment'})
    expect(await resolveS3Credentials({}, {HOME: home})).toMatchObject({accessKeyId: 'D', secretAccessKey: 'DS'})
    expect(await resolveS3Credentials({}, {HOME: home, AWS_PROFILE: 'seed'})).toMatchObject({accessKeyId: 'S', sessionToken: 'T'})
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
