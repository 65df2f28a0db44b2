import {createHash, randomBytes} from 'node:crypto'
import {access, mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {formatBytes} from '../../src/lib/ui/format.js'
import {runCli} from '../helpers/cli.js'
import {type Blob, type PushedImage, pushImage, randomLayer} from '../helpers/images.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

// pull --dry-run against the distribution registry and nginx, its numbers
// checked against what the real pull then reports.
let reg: RegistryServer
let web: NginxServer
let base: Blob
let multi: PushedImage
let armOnly: PushedImage
let single: PushedImage
let dir: string
const tool = randomBytes(150_000)
const other = randomBytes(90_000)

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

interface PlanJson {
  dryRun: true
  store: string
  counts: {
    images: number
    files: number
    bytes: number
    bytesToFetch: number
    bytesInStore: number
    sizeUnknown: number
  }
  items: ({
    kind: 'image'
    ref: string
    digest: string
    platforms: string[]
    size: number
    bytesToFetch: number
    bytesReused: number
    bytesInStore: number
  } & Record<string, unknown>)[]
}

interface PullJson {
  counts: {images: number; files: number; bytes: number; bytesFetched: number}
  items: {
    kind: string
    ref?: string
    path?: string
    digest?: string
    platforms?: string[]
    size: number
    bytesFetched: number
    reused: boolean
  }[]
}

beforeAll(async () => {
  reg = await startRegistry()
  base = randomLayer(200_000)
  multi = await pushImage(reg, {
    repository: 'plan/multi',
    tag: '1.0',
    platforms: ['linux/amd64', 'linux/arm64'],
    baseLayers: [base],
    layerSize: 60_000,
  })
  // A single manifest (no index) for linux/arm64 only: its config says so.
  armOnly = await pushImage(reg, {repository: 'plan/legacy', tag: 'v2s2', format: 'docker', platforms: ['linux/arm64']})
  single = await pushImage(reg, {repository: 'plan/single', tag: '3.0', baseLayers: [base], layerSize: 40_000})
  web = await startNginx({extraServerConfig: 'location /nohead/ { if ($request_method = HEAD) { return 405; } }'})
  await mkdir(join(web.root, 'tools'), {recursive: true})
  await mkdir(join(web.root, 'nohead'), {recursive: true})
  await writeFile(join(web.root, 'tools', 'tool.bin'), tool)
  await writeFile(join(web.root, 'nohead', 'other.bin'), other)
  dir = await makeTempDir('airlock-dry-run-')
}, 120_000)

afterAll(async () => {
  await web?.stop()
  await reg?.stop()
})

const ref = (i: PushedImage) => `${reg.host}/${i.repository}:${i.tag}`

async function manifest(
  name: string,
  images: string[],
  binaries: string[] = [],
  platforms = '[linux/amd64]',
): Promise<string> {
  const file = join(dir, `${name}.yaml`)
  const lines = [
    'apiVersion: airlock/v1',
    'kind: Manifest',
    'metadata:',
    `  name: ${name}`,
    'spec:',
    `  platforms: ${platforms}`,
    '  images:',
    ...images.map((i) => `    - ${i}`),
  ]
  if (binaries.length > 0) lines.push('  binaries:', ...binaries)
  await writeFile(file, `${lines.join('\n')}\n`)
  return file
}

const toolEntry = () => [`    - url: ${web.url}/tools/tool.bin`, `      sha256: ${sha(tool)}`]
const noHeadEntry = () => [`    - url: ${web.url}/nohead/other.bin`, `      sha256: ${sha(other)}`]

describe('airlock pull --dry-run', () => {
  it('fails as the pull fails on an image without the platform asked for, by --platform or the manifest', async () => {
    const byManifest = await manifest('arm', [ref(armOnly)])
    const byFlag = await manifest('arm-flag', [ref(armOnly)], [], '[linux/arm64]')
    for (const [file, extra] of [
      [byManifest, []],
      [byFlag, ['--platform', 'linux/amd64']],
    ] as const) {
      const store = join(dir, `store-arm-${extra.length}`)
      const dry = await runCli(['pull', file, '--dry-run', '--store', store, ...extra])
      const real = await runCli(['pull', file, '--store', store, ...extra])
      expect(real.code).toBe(1)
      expect(dry.code, dry.stdout).toBe(real.code)
      const line = `Error: ${ref(armOnly)}: the image is for linux/arm64 only, not linux/amd64`
      expect(real.stderr).toContain(line)
      expect(dry.stderr).toContain(line)
      expect(dry.stdout).not.toContain('would pull')
    }
    // The same image taken for its own platform: planned, as the pull takes it.
    const ok = await runCli(['pull', byFlag, '--dry-run', '--store', join(dir, 'store-arm-ok'), '--json'])
    expect(ok.code, ok.stderr).toBe(0)
    expect((JSON.parse(ok.stdout) as PlanJson).items[0].platforms).toEqual(['linux/arm64'])
  })

  it('prints per image the platforms taken and the bytes to fetch, writes nothing, and the pull then fetches exactly that', async () => {
    const file = await manifest(
      'all',
      [ref(multi), ref(single)],
      [...toolEntry(), ...noHeadEntry()],
      '[linux/amd64, linux/arm64]',
    )
    const store = join(dir, 'store-empty')
    const text = await runCli(['pull', file, '--dry-run', '--store', store])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toMatch(
      new RegExp(`^image +${ref(multi).replace(/[.:/]/g, '\\$&')} +sha256:\\w{12} +linux/amd64,linux/arm64 `, 'm'),
    )
    expect(text.stdout).toMatch(
      /^binary +127\.0\.0\.1\S*\/nohead\/other\.bin +sha256:\w{12} +- +size unknown +size unknown$/m,
    )
    expect(text.stdout).toMatch(
      /would pull 2 images and 2 files into .*: fetch [\d.]+ KiB of [\d.]+ KiB \(0 B already in the store\), and 1 file of unknown size/,
    )
    await expect(access(store)).rejects.toThrow()

    const dry = JSON.parse((await runCli(['pull', file, '--dry-run', '--store', store, '--json'])).stdout) as PlanJson
    const real = await runCli(['pull', file, '--store', store, '--json'])
    expect(real.code, real.stderr).toBe(0)
    const pulled = JSON.parse(real.stdout) as PullJson
    expect(dry.counts.bytesToFetch + other.length).toBe(pulled.counts.bytesFetched)
    expect(dry.counts.bytesInStore).toBe(0)
    expect(dry.counts.sizeUnknown).toBe(1)
    for (const img of dry.items.filter((i) => i.kind === 'image')) {
      const p = pulled.items.find((i) => i.ref === img.ref)!
      expect([img.ref, img.digest, img.platforms, img.size]).toEqual([p.ref, p.digest, p.platforms, p.size])
    }
    // The pull's stderr gives each image the size its result and the table give (manifests and blobs), in the one formatter.
    for (const p of pulled.items.filter((i) => i.kind === 'image')) {
      const line = real.stderr.split('\n').find((l) => l.startsWith(`ok   ${p.ref} (`))
      expect(line, real.stderr).toContain(` ${formatBytes(p.size)}, fetched `)
    }
    const t = dry.items.find((i) => String(i.path).endsWith('tools/tool.bin'))!
    expect([t.size, t.bytesToFetch, t.reused]).toEqual([tool.length, tool.length, false])
  })

  it('counts what the store already holds as reused, as the pull then does', async () => {
    const store = join(dir, 'store-part')
    // The store gets the single image (which shares its base layer with multi) and the tool.
    const first = await runCli(['pull', await manifest('part', [ref(single)], toolEntry()), '--store', store])
    expect(first.code, first.stderr).toBe(0)
    const file = await manifest('rest', [ref(multi), ref(single)], toolEntry(), '[linux/amd64, linux/arm64]')
    const d = await runCli(['pull', file, '--dry-run', '--store', store, '--json'])
    expect(d.code, d.stderr).toBe(0)
    const dry = JSON.parse(d.stdout) as PlanJson
    const s = dry.items.find((i) => i.ref === ref(single))!
    expect(s.bytesToFetch).toBe(0)
    const m = dry.items.find((i) => i.ref === ref(multi))!
    // The base layer is in the store: multi fetches its configs and own layers only.
    expect(m.bytesInStore).toBe(base.size)
    const t = dry.items.find((i) => String(i.path).endsWith('tool.bin'))!
    expect([t.reused, t.bytesToFetch]).toEqual([true, 0])
    expect(dry.counts.bytesInStore).toBe(single.blobs.reduce((n, b) => n + b.size, 0) + tool.length)
    const text = await runCli(['pull', file, '--dry-run', '--store', store])
    expect(text.stdout).toMatch(new RegExp(`^image +${ref(single).replace(/[.:/]/g, '\\$&')} .* in the store$`, 'm'))

    const real = await runCli(['pull', file, '--store', store, '--json'])
    expect(real.code, real.stderr).toBe(0)
    const pulled = JSON.parse(real.stdout) as PullJson
    expect(pulled.counts.bytesFetched).toBe(dry.counts.bytesToFetch)
    expect(pulled.items.find((i) => i.ref === ref(multi))!.bytesFetched).toBe(m.bytesToFetch)
  })

  it('validate --resolve names the image line of a platform it lacks (exit 2) and prints the platforms taken', async () => {
    const file = await manifest('validate', [ref(single), ref(armOnly)])
    const bad = await runCli(['validate', file, '--resolve'])
    expect(bad.code, bad.stderr).toBe(2)
    expect(bad.stderr).toContain(
      `validate.yaml:9:7: ${ref(armOnly)}: the image is for linux/arm64 only, not linux/amd64`,
    )
    const good = await runCli(['validate', await manifest('validate-ok', [ref(single), ref(multi)]), '--resolve'])
    expect(good.code, good.stderr).toBe(0)
    expect(good.stdout).toMatch(
      new RegExp(`^  image +${ref(multi).replace(/[.:/]/g, '\\$&')} +sha256:\\w{12} +linux/amd64 +[\\d.]+ KiB$`, 'm'),
    )
    expect(good.stdout).toContain('pull --dry-run')
  })
})
