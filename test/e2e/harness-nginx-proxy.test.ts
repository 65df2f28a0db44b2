import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {pushImage, RegistrySession} from '../helpers/images.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {startFaultProxy} from '../helpers/proxy.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'

const exec = promisify(execFile)

async function curl(args: string[]): Promise<{code: number; out: Buffer; err: string}> {
  try {
    const r = await exec('curl', ['-sS', '--max-time', '20', ...args], {
      encoding: 'buffer',
      maxBuffer: 64 * 1024 * 1024,
    })
    return {code: 0, out: r.stdout, err: r.stderr.toString()}
  } catch (e) {
    const err = e as {code: number; stdout: Buffer; stderr: Buffer}
    return {code: err.code, out: err.stdout, err: err.stderr.toString()}
  }
}

const data = randomBytes(600_000)
let web: NginxServer

beforeAll(async () => {
  web = await startNginx({extraServerConfig: 'location = /moved { return 302 /files/data.bin; }'})
  await mkdir(join(web.root, 'files'))
  await writeFile(join(web.root, 'files', 'data.bin'), data)
})
afterAll(async () => web?.stop())

describe('nginx', () => {
  it('serves its root on loopback, with ranges, and logs each request with status, bytes and Range', async () => {
    expect(web.url).toBe(`http://127.0.0.1:${web.port}`)
    expect(web.host).toBe(`127.0.0.1:${web.port}`)
    const full = await curl([`${web.url}/files/data.bin`])
    expect(full.out).toEqual(data)
    const part = await curl(['-r', '1000-1999', `${web.url}/files/data.bin`])
    expect(part.out).toEqual(data.subarray(1000, 2000))
    const missing = await curl(['-o', '/dev/null', '-w', '%{http_code}', `${web.url}/files/none.bin`])
    expect(missing.out.toString()).toBe('404')
    // autoindex off
    expect((await curl(['-o', '/dev/null', '-w', '%{http_code}', `${web.url}/files/`])).out.toString()).toBe('403')
    const moved = await curl(['-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', `${web.url}/moved`])
    expect(moved.out.toString()).toBe(`302 ${web.url}/files/data.bin`)
    const lines = await web.accessLines()
    expect(lines.some((l) => l.includes('"GET /files/data.bin HTTP/1.1" 200 600000 ') && l.includes('"-"'))).toBe(true)
    expect(
      lines.some((l) => l.includes('"GET /files/data.bin HTTP/1.1" 206 1000 ') && l.includes('"bytes=1000-1999"')),
    ).toBe(true)
    expect(lines.some((l) => l.includes('"GET /files/none.bin HTTP/1.1" 404 '))).toBe(true)
  })

  it('reverse-proxies a registry: pushes through it land upstream and show in its log', async () => {
    const reg: RegistryServer = await startRegistry()
    const front = await startNginx({proxyTo: reg.url})
    try {
      const img = await pushImage(
        {...reg, url: front.url},
        {repository: 'via/front', tag: '1', layers: 1, layerSize: 2_000_000},
      )
      expect(img.ref).toBe(`${front.host}/via/front:1`)
      const direct = await new RegistrySession(reg, 'via/front').getManifest('1')
      expect(direct.body).toEqual(img.manifestBytes)
      const layer = img.blobs.find((b) => b.size === 2_000_000)!
      const ranged = await curl(['-r', '10-19', `${front.url}/v2/via/front/blobs/${layer.digest}`])
      expect(ranged.out).toEqual(layer.data.subarray(10, 20))
      const lines = await front.accessLines()
      expect(lines.some((l) => /"PUT \/v2\/via\/front\/blobs\/uploads\/\S+ HTTP\/1.1" 201 /.test(l))).toBe(true)
      expect(lines.some((l) => l.includes('"PUT /v2/via/front/manifests/1 HTTP/1.1" 201'))).toBe(true)
      expect(lines.some((l) => l.includes(`"GET /v2/via/front/blobs/${layer.digest} HTTP/1.1" 206 10 `))).toBe(true)
    } finally {
      await front.stop()
      await reg.stop()
    }
  })

  it('stops: the port refuses connections afterwards', async () => {
    const n = await startNginx()
    await n.stop()
    expect((await curl([`${n.url}/`])).code).toBe(7)
  })
})

describe('fault proxy', () => {
  it('forwards untouched without faults and counts requests', async () => {
    const p = await startFaultProxy(web.url, {})
    try {
      const r = await curl([`${p.url}/files/data.bin`])
      expect(r.out).toEqual(data)
      await curl([`${p.url}/files/data.bin`])
      expect(p.requests).toBe(2)
      expect(p.faults).toBe(0)
    } finally {
      await p.stop()
    }
  })

  it('flips exactly one byte at the offset, only for matching paths', async () => {
    await writeFile(join(web.root, 'files', 'other.bin'), data)
    const p = await startFaultProxy(web.url, {flipByteAt: 300_000, match: /data\.bin$/})
    try {
      const r = await curl([`${p.url}/files/data.bin`])
      expect(r.out.length).toBe(data.length)
      const diffs = [...r.out.keys()].filter((i) => r.out[i] !== data[i])
      expect(diffs).toEqual([300_000])
      expect(r.out[300_000]).toBe(data[300_000] ^ 0xff)
      expect((await curl([`${p.url}/files/other.bin`])).out).toEqual(data)
      expect(p.faults).toBe(1)
    } finally {
      await p.stop()
    }
  })

  it('cuts the connection after N body bytes, a limited number of times', async () => {
    const p = await startFaultProxy(web.url, {cutAfterBytes: 100_000, times: 1})
    try {
      const cut = await curl(['-o', '-', `${p.url}/files/data.bin`])
      expect(cut.code).toBe(18)
      expect(cut.out.length).toBe(100_000)
      expect(cut.out).toEqual(data.subarray(0, 100_000))
      expect((await curl([`${p.url}/files/data.bin`])).out).toEqual(data)
    } finally {
      await p.stop()
    }
  })

  it('with spareRetries, forwards a request answered 503 the next time it comes', async () => {
    const p = await startFaultProxy(web.url, {failEvery: 1, spareRetries: true})
    try {
      const codes: string[] = []
      for (const name of ['data.bin', 'data.bin', 'none.bin', 'data.bin', 'none.bin', 'none.bin']) {
        codes.push((await curl(['-o', '/dev/null', '-w', '%{http_code}', `${p.url}/files/${name}`])).out.toString())
      }
      expect(codes).toEqual(['503', '200', '503', '503', '404', '503'])
      expect(p.faults).toBe(4)
    } finally {
      await p.stop()
    }
  })

  it('answers 503 to every Nth request', async () => {
    const p = await startFaultProxy(web.url, {failEvery: 3})
    try {
      const codes: string[] = []
      for (let i = 0; i < 6; i++)
        codes.push((await curl(['-o', '/dev/null', '-w', '%{http_code}', `${p.url}/files/data.bin`])).out.toString())
      expect(codes).toEqual(['200', '200', '503', '200', '200', '503'])
      expect(p.requests).toBe(6)
      expect(p.log.filter((l) => l.endsWith('503 fault')).length).toBe(2)
    } finally {
      await p.stop()
    }
  })
})
