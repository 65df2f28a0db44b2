import {execFile, spawn} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {promisify} from 'node:util'

import {
  CreateBucketCommand,
  GetObjectCommand,
  ListBucketsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
} from '@aws-sdk/client-s3'
import {afterAll, describe, expect, it} from 'vitest'

import {repoRoot} from '../helpers/cli.js'
import {pushImage} from '../helpers/images.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {s3Client, type S3Server, startRgw} from '../helpers/rgw.js'

const exec = promisify(execFile)

async function run(cmd: string, args: string[]): Promise<{code: number; out: string; err: string}> {
  try {
    const r = await exec(cmd, args, {maxBuffer: 64 * 1024 * 1024})
    return {code: 0, out: r.stdout, err: r.stderr}
  } catch (e) {
    const err = e as {code: number; stdout: string; stderr: string}
    return {code: err.code, out: err.stdout, err: err.stderr}
  }
}

async function timedDownload(url: string): Promise<{ms: number; size: string}> {
  const t = Date.now()
  const r = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{size_download}', url])
  return {ms: Date.now() - t, size: r.out}
}

describe('harness: nginx rate limit', () => {
  const servers: NginxServer[] = []
  afterAll(async () => {
    for (const s of servers) await s.stop()
  })

  it('a per-connection limit of 1m slows a 4 MB download to about 3 s on loopback', async () => {
    const fast = await startNginx()
    servers.push(fast)
    const slow = await startNginx({root: fast.root, rateLimit: '1m'})
    servers.push(slow)
    await writeFile(join(fast.root, 'big.bin'), randomBytes(4 * 1024 * 1024))
    const unlimited = await timedDownload(`${fast.url}/big.bin`)
    const limited = await timedDownload(`${slow.url}/big.bin`)
    expect(unlimited.size).toBe(String(4 * 1024 * 1024))
    expect(limited.size).toBe(String(4 * 1024 * 1024))
    // nginx lets the first second's worth through at once, so 4 MB at 1 MB/s takes about 3 s.
    expect(unlimited.ms).toBeLessThan(1500)
    expect(limited.ms).toBeGreaterThan(2200)
    expect(limited.ms).toBeLessThan(8000)
  })

  it('also slows a proxied download (proxyTo + rateLimit), passing Range and Host to the upstream', async () => {
    const upstream = await startNginx({extraServerConfig: 'location = /host { return 200 "$http_host"; }'})
    servers.push(upstream)
    const plain = await startNginx({proxyTo: upstream.url})
    servers.push(plain)
    const slow = await startNginx({proxyTo: upstream.url, rateLimit: '1m'})
    servers.push(slow)
    const data = randomBytes(4 * 1024 * 1024)
    await writeFile(join(upstream.root, 'big.bin'), data)
    const unlimited = await timedDownload(`${plain.url}/big.bin`)
    const limited = await timedDownload(`${slow.url}/big.bin`)
    expect(unlimited.size).toBe(String(data.length))
    expect(limited.size).toBe(String(data.length))
    expect(unlimited.ms).toBeLessThan(1500)
    expect(limited.ms).toBeGreaterThan(2200)
    expect(limited.ms).toBeLessThan(8000)
    const ranged = await exec('curl', ['-sS', '-r', '1000-1999', `${slow.url}/big.bin`], {encoding: 'buffer'})
    expect(ranged.stdout).toEqual(data.subarray(1000, 2000))
    expect(
      (await upstream.accessLines()).some(
        (l) => l.includes('"GET /big.bin HTTP/1.1" 206 1000 ') && l.includes('"bytes=1000-1999"'),
      ),
    ).toBe(true)
    expect((await run('curl', ['-sS', `${slow.url}/host`])).out).toBe(slow.host)
  })
})

describe('harness: skopeo against the registries', () => {
  const regs: RegistryServer[] = []
  afterAll(async () => {
    for (const r of regs) await r.stop()
  })

  for (const auth of ['htpasswd', 'token'] as const) {
    it(`inspects a pushed multi-arch image over TLS with ${auth} auth (--cert-dir, --creds)`, async () => {
      const reg = await startRegistry({tls: true, auth, username: 'carol', password: 'c4rol-pw'})
      regs.push(reg)
      const img = await pushImage(reg, {
        repository: 'multi/app',
        tag: '2.1',
        platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
      })
      const common = ['--cert-dir', dirname(reg.caFile!), '--creds', 'carol:c4rol-pw']
      const raw = await run('skopeo', ['inspect', '--raw', ...common, `docker://${img.ref}`])
      expect(raw.err).toBe('')
      expect(raw.out).toBe(img.manifestBytes.toString())
      const arm = await run('skopeo', [
        '--override-arch',
        'arm',
        '--override-variant',
        'v7',
        'inspect',
        ...common,
        `docker://${img.ref}`,
      ])
      expect(arm.code, arm.err).toBe(0)
      const info = JSON.parse(arm.out) as {Digest: string; Architecture: string; Layers: string[]}
      expect(info.Digest).toBe(img.digest)
      expect(info.Architecture).toBe('arm')
      const child = img.children!.find((c) => c.platform === 'linux/arm/v7')!
      const layers = (JSON.parse(child.manifestBytes.toString()) as {layers: {digest: string}[]}).layers.map(
        (l) => l.digest,
      )
      expect(info.Layers).toEqual(layers)
      const byDigest = await run('skopeo', [
        'inspect',
        '--raw',
        ...common,
        `docker://${reg.host}/multi/app@${child.digest}`,
      ])
      expect(byDigest.out).toBe(child.manifestBytes.toString())
      const denied = await run('skopeo', [
        'inspect',
        '--raw',
        '--cert-dir',
        dirname(reg.caFile!),
        '--creds',
        'carol:wrong',
        `docker://${img.ref}`,
      ])
      expect(denied.code).not.toBe(0)
      const untrusted = await run('skopeo', ['inspect', '--raw', '--creds', 'carol:c4rol-pw', `docker://${img.ref}`])
      expect(untrusted.err).toMatch(/certificate/)
    })
  }
})

describe('harness: Ceph RGW', () => {
  let s3: S3Server | undefined
  afterAll(async () => s3?.stop())

  it('starts a one-node cluster that stores and serves objects with signed requests', async () => {
    const t = Date.now()
    s3 = await startRgw()
    const started = Date.now() - t
    expect(s3.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    const c = s3.client()
    await c.send(new CreateBucketCommand({Bucket: 'harness-bucket'}))
    const body = randomBytes(2 * 1024 * 1024)
    await c.send(new PutObjectCommand({Bucket: 'harness-bucket', Key: 'a/b.bin', Body: body, Metadata: {sha256: 'x'}}))
    const got = await c.send(new GetObjectCommand({Bucket: 'harness-bucket', Key: 'a/b.bin'}))
    expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(body)
    expect(got.Metadata?.sha256).toBe('x')
    const list = await c.send(new ListObjectsV2Command({Bucket: 'harness-bucket'}))
    expect(list.Contents?.map((o) => o.Key)).toEqual(['a/b.bin'])
    const bad = s3Client(s3.endpoint, s3.accessKey, 'not-the-secret')
    await expect(bad.send(new ListBucketsCommand({}))).rejects.toThrow()
    c.destroy()
    bad.destroy()
    // Generous: the note measured 1.6 s on these machines.
    expect(started).toBeLessThan(30_000)
    const endpoint = s3.endpoint
    await s3.stop()
    s3 = undefined
    expect((await run('curl', ['-sS', endpoint])).code).toBe(7)
  })
})

describe('harness: cleanup when the test process ends', () => {
  for (const how of ['exit', 'throw', 'SIGTERM'] as const) {
    it(`kills servers and removes temp dirs on ${how}`, async () => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', join(repoRoot, 'test/e2e/fixtures/leaky-servers.ts'), how === 'SIGTERM' ? 'wait' : how],
        {
          cwd: repoRoot,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      let out = ''
      let err = ''
      child.stdout.on('data', (b: Buffer) => (out += b.toString()))
      child.stderr.on('data', (b: Buffer) => (err += b.toString()))
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
      if (how === 'SIGTERM') {
        while (!out.includes('\n') && child.exitCode === null) await new Promise((r) => setTimeout(r, 50))
        child.kill('SIGTERM')
      }
      await exited
      const info = JSON.parse(out.split('\n')[0]) as {
        registry: string
        token: string
        registryDir: string
        nginx: string
        nginxRoot: string
        dir: string
      }
      expect(info.registry, err).toMatch(/^https:/)
      for (const url of [info.registry, info.token, info.nginx]) expect((await run('curl', ['-sSk', url])).code).toBe(7)
      for (const d of [info.registryDir, info.nginxRoot, info.dir]) expect(existsSync(d)).toBe(false)
    })
  }
})
