import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {promisify} from 'node:util'
import {gunzipSync} from 'node:zlib'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {MEDIA, pushImage, randomLayer, RegistrySession} from '../helpers/images.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {parseScope} from '../helpers/token-server.js'

const exec = promisify(execFile)

// curl is run asynchronously: the token endpoint lives in this process and must keep answering.
async function curl(args: string[]): Promise<{code: number; out: string; err: string}> {
  try {
    const r = await exec('curl', ['-sS', '--max-time', '20', ...args])
    return {code: 0, out: r.stdout, err: r.stderr}
  } catch (e) {
    const err = e as {code: number; stdout: string; stderr: string}
    return {code: err.code, out: err.stdout, err: err.stderr}
  }
}

function sha(b: Buffer): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`
}

function b64json(part: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>
}

describe('randomLayer', () => {
  it('is a real gzip of exactly the size asked, each one different', () => {
    for (const size of [3000, 70_000, 300_001]) {
      const a = randomLayer(size)
      expect(a.size).toBe(size)
      expect(a.data.length).toBe(size)
      expect(a.digest).toBe(sha(a.data))
      const tar = gunzipSync(a.data)
      expect(tar.subarray(257, 262).toString()).toBe('ustar')
      expect(randomLayer(size).digest).not.toBe(a.digest)
    }
  })
})

describe('token scopes', () => {
  it('parses type, name and actions', () => {
    expect(parseScope('repository:team/app:pull,push')).toEqual({
      type: 'repository',
      name: 'team/app',
      actions: ['pull', 'push'],
    })
    expect(parseScope('registry:catalog:*')).toEqual({type: 'registry', name: 'catalog', actions: ['*']})
    expect(parseScope('nonsense')).toBeUndefined()
  })
})

describe('plain registry with pushed images', () => {
  let reg: RegistryServer
  beforeAll(async () => {
    reg = await startRegistry()
  })
  afterAll(async () => reg?.stop())

  it('answers /v2/ on loopback over HTTP', async () => {
    expect(reg.host).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(reg.url).toBe(`http://${reg.host}`)
    const r = await curl(['-o', '/dev/null', '-w', '%{http_code}', `${reg.url}/v2/`])
    expect(r.out).toBe('200')
  })

  it('pushes a multi-arch OCI index whose bytes, children, configs and layers the registry serves back', async () => {
    const base = randomLayer(50_000)
    const img = await pushImage(reg, {
      repository: 'lib/multi',
      tag: '1.0',
      platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
      baseLayers: [base],
      layers: 2,
      layerSize: 20_000,
    })
    expect(img.ref).toBe(`${reg.host}/lib/multi:1.0`)
    expect(img.mediaType).toBe(MEDIA.ociIndex)
    expect(img.digest).toBe(sha(img.manifestBytes))
    expect(img.children?.map((c) => c.platform)).toEqual(['linux/amd64', 'linux/arm64', 'linux/arm/v7'])
    // 3 configs + 3x2 own layers + the shared base once.
    expect(img.blobs.length).toBe(10)
    const s = new RegistrySession(reg, 'lib/multi')
    const top = await s.getManifest('1.0')
    expect(top.status).toBe(200)
    expect(top.headers['docker-content-digest']).toBe(img.digest)
    expect(top.body).toEqual(img.manifestBytes)
    const index = JSON.parse(top.body.toString()) as {
      manifests: {digest: string; platform: {architecture: string; variant?: string}}[]
    }
    expect(index.manifests[2].platform).toEqual({os: 'linux', architecture: 'arm', variant: 'v7'})
    for (const child of img.children!) {
      const m = await s.getManifest(child.digest)
      expect(m.body).toEqual(child.manifestBytes)
      expect(m.headers['content-type']).toBe(MEDIA.ociManifest)
      const manifest = JSON.parse(m.body.toString()) as {
        config: {digest: string}
        layers: {digest: string; size: number}[]
      }
      expect(manifest.layers[0].digest).toBe(base.digest)
      const config = await s.request('GET', `/v2/lib/multi/blobs/${manifest.config.digest}`)
      const cfg = JSON.parse(config.body.toString()) as {
        os: string
        architecture: string
        variant?: string
        rootfs: {diff_ids: string[]}
      }
      expect(`${cfg.os}/${cfg.architecture}${cfg.variant ? `/${cfg.variant}` : ''}`).toBe(child.platform)
      for (const [i, l] of manifest.layers.entries()) {
        const blob = await s.request('GET', `/v2/lib/multi/blobs/${l.digest}`)
        expect(blob.body.length).toBe(l.size)
        expect(sha(blob.body)).toBe(l.digest)
        expect(sha(gunzipSync(blob.body))).toBe(cfg.rootfs.diff_ids[i])
      }
    }
  })

  it('pushes Docker schema2 manifests and manifest lists; shared base layers keep one digest across images', async () => {
    const base = randomLayer(30_000)
    const list = await pushImage(reg, {
      repository: 'lib/dock',
      tag: '2',
      format: 'docker',
      platforms: ['linux/amd64', 'linux/arm64'],
      baseLayers: [base],
    })
    const single = await pushImage(reg, {repository: 'lib/one', tag: 'x', format: 'docker', baseLayers: [base]})
    expect(list.mediaType).toBe(MEDIA.dockerList)
    expect(single.mediaType).toBe(MEDIA.dockerManifest)
    expect(single.children).toBeUndefined()
    expect(single.platforms).toEqual(['linux/amd64'])
    const r = await new RegistrySession(reg, 'lib/one').getManifest('x')
    expect(r.headers['content-type']).toBe(MEDIA.dockerManifest)
    expect(r.body).toEqual(single.manifestBytes)
    const m = JSON.parse(r.body.toString()) as {
      config: {mediaType: string}
      layers: {mediaType: string; digest: string}[]
    }
    expect(m.config.mediaType).toBe(MEDIA.dockerConfig)
    expect(m.layers.map((l) => l.mediaType)).toEqual([MEDIA.dockerLayer, MEDIA.dockerLayer])
    expect(list.blobs.some((b) => b.digest === base.digest) && single.blobs.some((b) => b.digest === base.digest)).toBe(
      true,
    )
  })
})

describe('registry over TLS with htpasswd', () => {
  let reg: RegistryServer
  beforeAll(async () => {
    reg = await startRegistry({tls: true, auth: 'htpasswd', username: 'alice', password: 'pa55 w0rd'})
  })
  afterAll(async () => reg?.stop())

  it('needs the CA, then Basic credentials', async () => {
    expect(reg.url).toBe(`https://${reg.host}`)
    expect(reg.caFile).toBeDefined()
    expect((await curl([`${reg.url}/v2/`])).code).toBe(60)
    const anon = await curl(['--cacert', reg.caFile!, '-i', `${reg.url}/v2/`])
    expect(anon.out).toMatch(/^HTTP\/\S+ 401/)
    expect(anon.out.toLowerCase()).toContain('www-authenticate: basic realm="airlock-test"')
    const wrong = await curl([
      '--cacert',
      reg.caFile!,
      '-u',
      'alice:nope',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${reg.url}/v2/`,
    ])
    expect(wrong.out).toBe('401')
    const ok = await curl([
      '--cacert',
      reg.caFile!,
      '-u',
      'alice:pa55 w0rd',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${reg.url}/v2/`,
    ])
    expect(ok.out).toBe('200')
  })

  it('takes pushed images with those credentials', async () => {
    const img = await pushImage(reg, {repository: 'sec/app', tag: 'v1'})
    const r = await curl([
      '--cacert',
      reg.caFile!,
      '-u',
      'alice:pa55 w0rd',
      '-H',
      `Accept: ${MEDIA.ociManifest}`,
      `${reg.url}/v2/sec/app/manifests/v1`,
    ])
    expect(r.out).toBe(img.manifestBytes.toString())
    await expect(pushImage({...reg, password: 'bad'}, {repository: 'sec/app', tag: 'v2'})).rejects.toThrow(/401/)
  })
})

describe('registry with token auth', () => {
  let reg: RegistryServer
  beforeAll(async () => {
    reg = await startRegistry({auth: 'token', username: 'bob', password: 'tok-pass'})
  })
  afterAll(async () => reg?.stop())

  it('challenges with Bearer, and the registry accepts the JWT the token endpoint signs', async () => {
    const img = await pushImage(reg, {repository: 'tok/app', tag: '1'})
    const anon = await curl(['-i', `${reg.url}/v2/tok/app/tags/list`])
    expect(anon.out).toMatch(/^HTTP\/\S+ 401/)
    expect(anon.out).toContain(
      `Bearer realm="${reg.token!.realm}",service="${reg.token!.service}",scope="repository:tok/app:pull"`,
    )

    const t = await curl([
      '-u',
      'bob:tok-pass',
      `${reg.token!.realm}?service=${reg.token!.service}&scope=repository:tok/app:pull`,
    ])
    const body = JSON.parse(t.out) as {token: string; access_token: string; expires_in: number}
    expect(body.access_token).toBe(body.token)
    expect(body.expires_in).toBeGreaterThan(0)
    const [h, c] = body.token.split('.')
    expect(b64json(h)).toMatchObject({alg: 'RS256', typ: 'JWT'})
    expect((b64json(h).x5c as string[]).length).toBe(1)
    expect(b64json(c)).toMatchObject({
      sub: 'bob',
      aud: reg.token!.service,
      iss: reg.token!.issuer,
      access: [{type: 'repository', name: 'tok/app', actions: ['pull']}],
    })

    const tags = await curl(['-H', `Authorization: Bearer ${body.token}`, `${reg.url}/v2/tok/app/tags/list`])
    expect(JSON.parse(tags.out)).toEqual({name: 'tok/app', tags: ['1']})
    const m = await curl([
      '-H',
      `Authorization: Bearer ${body.token}`,
      '-H',
      `Accept: ${MEDIA.ociManifest}`,
      `${reg.url}/v2/tok/app/manifests/1`,
    ])
    expect(m.out).toBe(img.manifestBytes.toString())
    // The token is for tok/app only.
    const other = await curl(['-i', '-H', `Authorization: Bearer ${body.token}`, `${reg.url}/v2/tok/other/tags/list`])
    expect(other.out).toMatch(/^HTTP\/\S+ 401/)
    expect(other.out).toContain('insufficient_scope')
  })

  it('refuses wrong and missing credentials at the token endpoint', async () => {
    const wrong = await curl([
      '-u',
      'bob:nope',
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${reg.token!.realm}?service=${reg.token!.service}&scope=repository:tok/app:pull`,
    ])
    expect(wrong.out).toBe('401')
    const none = await curl([
      '-o',
      '/dev/null',
      '-w',
      '%{http_code}',
      `${reg.token!.realm}?service=${reg.token!.service}`,
    ])
    expect(none.out).toBe('401')
    expect(reg.token!.requests.some((r) => r.account === 'bob' && !r.ok)).toBe(true)
  })
})

describe('registry stop', () => {
  it('stops the server: the port refuses connections afterwards', async () => {
    const reg = await startRegistry({tls: true, auth: 'token'})
    expect((await curl(['--cacert', reg.caFile!, '-o', '/dev/null', '-w', '%{http_code}', `${reg.url}/v2/`])).out).toBe(
      '401',
    )
    await reg.stop()
    expect((await curl(['--cacert', reg.caFile!, `${reg.url}/v2/`])).code).toBe(7)
    expect((await curl(['--cacert', reg.caFile!, reg.token!.realm])).code).toBe(7)
  })
})
