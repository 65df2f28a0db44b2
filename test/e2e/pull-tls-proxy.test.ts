import {createHash, randomBytes} from 'node:crypto'
import {existsSync} from 'node:fs'
import {mkdir, readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {stringify} from 'yaml'

import {runCli} from '../helpers/cli.js'
import {type ForwardProxy, startForwardProxy} from '../helpers/forward-proxy.js'
import {type PushedImage, pushImage} from '../helpers/images.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

// `airlock pull` against HTTPS file servers (--ca-file) and through a real
// forward proxy (tinyproxy) named by HTTP_PROXY / HTTPS_PROXY, and around it with NO_PROXY.

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

let root: string
let plain: NginxServer
let secure: NginxServer
let proxy: ForwardProxy
let reg: RegistryServer
let image: PushedImage
const plainFile = randomBytes(150_000)
const secureFile = randomBytes(170_000)

/**
 * The CLI's environment: every proxy variable blanked (so none leaks in from
 * the test process, in either case) and then the ones a test sets.
 */
function proxyEnv(vars: {HTTP_PROXY?: string; HTTPS_PROXY?: string; NO_PROXY?: string} = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'ALL_PROXY']) {
    env[name] = ''
    env[name.toLowerCase()] = ''
  }
  return {...env, ...vars}
}

async function manifest(dir: string, spec: Record<string, unknown>): Promise<string> {
  const file = join(dir, 'manifest.yaml')
  await writeFile(file, stringify({apiVersion: 'airlock/v1', kind: 'Manifest', metadata: {name: 'tls-proxy'}, spec}))
  return file
}

const noStack = /^\s+at .+:\d+:\d+\)?$/m

beforeAll(async () => {
  root = await makeTempDir('airlock-pull-tls-web-')
  await mkdir(join(root, 'files'))
  await writeFile(join(root, 'files', 'plain.bin'), plainFile)
  await writeFile(join(root, 'files', 'secure.bin'), secureFile)
  ;[plain, secure, reg] = await Promise.all([
    startNginx({root}),
    startNginx({root, tls: true}),
    startRegistry({tls: true}),
  ])
  // CONNECT only to the TLS servers, as stock proxy configs allow it to 443 only: plain HTTP must not tunnel.
  proxy = await startForwardProxy({connectPorts: [secure.port, Number(new URL(reg.url).port)]})
  image = await pushImage(reg, {repository: 'lib/proxied', tag: '1.0', layers: 2, layerSize: 100_000})
}, 120_000)

afterAll(async () => {
  await Promise.all([plain?.stop(), secure?.stop(), proxy?.stop(), reg?.stop()])
})

describe('airlock pull over HTTPS with --ca-file', () => {
  it('serves https from the TLS nginx', () => {
    expect(secure.url).toBe(`https://${secure.host}`)
    expect(secure.caFile).toBeDefined()
    expect(plain.caFile).toBeUndefined()
  })

  it('refuses a server whose CA is not trusted, naming the host; succeeds with --ca-file', async () => {
    const dir = await makeTempDir('airlock-pull-tls-')
    const file = await manifest(dir, {binaries: [{url: `${secure.url}/files/secure.bin`, sha256: sha(secureFile)}]})

    const refused = await runCli(['pull', file, '--store', join(dir, 'store-a')], {env: proxyEnv()})
    expect(refused.code).toBe(1)
    expect(refused.stderr).toContain(secure.host)
    expect(refused.stderr).toMatch(/certificate/i)
    expect(refused.stderr).not.toMatch(noStack)
    expect(existsSync(join(dir, 'store-a', 'files', secure.host, 'files', 'secure.bin'))).toBe(false)

    const ok = await runCli(['pull', file, '--store', join(dir, 'store-b'), '--ca-file', secure.caFile!], {
      env: proxyEnv(),
    })
    expect(ok.stderr).not.toMatch(/Error/)
    expect(ok.code).toBe(0)
    expect(await readFile(join(dir, 'store-b', 'files', secure.host, 'files', 'secure.bin'))).toEqual(secureFile)
  })
})

describe('airlock pull through a forward proxy', () => {
  it('sends a plain http download through HTTP_PROXY', async () => {
    const dir = await makeTempDir('airlock-pull-proxy-http-')
    const url = `${plain.url}/files/plain.bin`
    const file = await manifest(dir, {binaries: [{url, sha256: sha(plainFile)}]})
    const before = await proxy.requests()
    const r = await runCli(['pull', file, '--store', join(dir, 'store')], {env: proxyEnv({HTTP_PROXY: proxy.url})})
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    const seen = (await proxy.requests()).slice(before.length)
    expect(seen).toContain(`GET ${url} HTTP/1.1`)
    expect(await readFile(join(dir, 'store', 'files', plain.host, 'files', 'plain.bin'))).toEqual(plainFile)
  })

  it('tunnels an https download through HTTPS_PROXY with CONNECT, trusting --ca-file', async () => {
    const dir = await makeTempDir('airlock-pull-proxy-https-')
    const file = await manifest(dir, {binaries: [{url: `${secure.url}/files/secure.bin`, sha256: sha(secureFile)}]})
    const before = await proxy.requests()
    const r = await runCli(['pull', file, '--store', join(dir, 'store'), '--ca-file', secure.caFile!], {
      env: proxyEnv({HTTPS_PROXY: proxy.url}),
    })
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    const seen = (await proxy.requests()).slice(before.length)
    expect(seen).toContain(`CONNECT ${secure.host} HTTP/1.1`)
    // Inside the tunnel the request is TLS: the proxy never sees the path.
    expect(seen.join('\n')).not.toContain('secure.bin')
    expect(await readFile(join(dir, 'store', 'files', secure.host, 'files', 'secure.bin'))).toEqual(secureFile)
  })

  it('goes direct for hosts in NO_PROXY', async () => {
    const dir = await makeTempDir('airlock-pull-proxy-none-')
    const file = await manifest(dir, {
      binaries: [
        {url: `${plain.url}/files/plain.bin`, sha256: sha(plainFile)},
        {url: `${secure.url}/files/secure.bin`, sha256: sha(secureFile)},
      ],
    })
    const before = await proxy.requests()
    const r = await runCli(['pull', file, '--store', join(dir, 'store'), '--ca-file', secure.caFile!], {
      env: proxyEnv({HTTP_PROXY: proxy.url, HTTPS_PROXY: proxy.url, NO_PROXY: '127.0.0.1'}),
    })
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    expect((await proxy.requests()).slice(before.length)).toEqual([])
    expect(await readFile(join(dir, 'store', 'files', plain.host, 'files', 'plain.bin'))).toEqual(plainFile)
    expect(await readFile(join(dir, 'store', 'files', secure.host, 'files', 'secure.bin'))).toEqual(secureFile)
  })

  it('pulls an image from a TLS registry through HTTPS_PROXY', async () => {
    const dir = await makeTempDir('airlock-pull-proxy-image-')
    const file = await manifest(dir, {platforms: ['linux/amd64'], images: [image.ref]})
    const before = await proxy.requests()
    const r = await runCli(['pull', file, '--store', join(dir, 'store'), '--ca-file', reg.caFile!, '--json'], {
      env: proxyEnv({HTTPS_PROXY: proxy.url}),
    })
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as {items: {ref: string; digest: string}[]}
    expect(out.items.map((i) => i.digest)).toEqual([image.digest])
    const seen = (await proxy.requests()).slice(before.length)
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.every((l) => l === `CONNECT ${reg.host} HTTP/1.1`)).toBe(true)
    for (const b of image.blobs)
      expect(existsSync(join(dir, 'store', 'images', 'blobs', 'sha256', b.digest.slice('sha256:'.length)))).toBe(true)
  })
})
