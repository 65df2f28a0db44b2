import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readFile, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {runCli} from '../helpers/cli.js'
import {pushImage, RegistrySession} from '../helpers/images.js'
import {startNginx} from '../helpers/nginx.js'
import {type PagingProxy, startPagingProxy} from '../helpers/paging-proxy.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)

// Tag selection against the real distribution registry. It answers tags/list
// and _catalog in one page, as 2.8 does; Harbor, GHCR and Docker Hub page
// them, so every request here goes through a real HTTP server in front of it
// (test/helpers/paging-proxy.ts) that pages with n/last and Link headers.

const APP_TAGS = [
  'v1.27.9',
  'v1.28.0',
  'v1.28.1',
  'v1.28.2',
  'v1.28.3',
  'v1.28.4',
  'v1.29.0-rc.1',
  'v1.29.0',
  'latest',
  'dev-abc',
]
/** 120 versions: 2.0.0 ... 2.0.119, so lexical order (2.0.99 > 2.0.119) is not version order. */
const MANY_TAGS = Array.from({length: 120}, (_, i) => `2.0.${i}`)

let reg: RegistryServer
let proxy: PagingProxy
let dir: string
/** Tag -> digest of team/app, as pushed. */
const appDigest = new Map<string, string>()

const head = (name: string) => `apiVersion: airlock/v1
kind: Manifest
metadata:
  name: ${name}
spec:
`

async function manifest(name: string, body: string): Promise<string> {
  const file = join(dir, `${name}.yaml`)
  await writeFile(file, head(name) + body)
  return file
}

beforeAll(async () => {
  dir = await makeTempDir('airlock-select-')
  reg = await startRegistry()
  // A distinct small image per tag of team/app, so each tag has its own digest.
  for (const tag of APP_TAGS)
    appDigest.set(tag, (await pushImage(reg, {repository: 'team/app', tag, layerSize: 2048})).digest)
  // One image under 120 tags of team/many.
  const img = await pushImage(reg, {repository: 'team/many', tag: MANY_TAGS[0], layerSize: 2048})
  const session = new RegistrySession(reg, 'team/many')
  for (const tag of MANY_TAGS.slice(1)) await session.putManifest(tag, img.mediaType, img.manifestBytes)
  await pushImage(reg, {repository: 'other/thing', tag: '9.9.9', layerSize: 2048})
  proxy = await startPagingProxy(reg.url, {pageSize: 25, catalogPageSize: 2})
}, 120_000)

afterAll(async () => {
  await proxy?.stop()
  await reg?.stop()
})

interface Report {
  field: string
  repository: string
  selection: string
  selected: {tag: string; rule: string}[]
  left: {tag: string; reason: string}[]
}

describe('tag selections resolved against the registry', () => {
  it('validate --resolve: each selection picks exactly the expected tags, every page read', async () => {
    const p = proxy.host
    const file = await manifest(
      'resolve',
      `  images:
    - repository: ${p}/team/app
      tags: {semver: ">=1.28.0 <1.29.0"}
    - repository: ${p}/team/app
      tags: {latest: 2}
    - repository: ${p}/team/app
      tags: {regex: "^v1\\\\.2[89]\\\\.", exclude: "-rc|\\\\.0$"}
    - repository: ${p}/team/many
      tags: all
  repositories:
    - registry: ${p}
      include: "^team/"
      tags: {latest: 1}
`,
    )
    proxy.listRequests.length = 0
    const r = await runCli(['validate', file, '--resolve', '--json'])
    expect(r.code, r.stderr).toBe(0)
    const out = JSON.parse(r.stdout) as {
      resolved: {images: string[]; selections: Report[]; repositories: {field: string; repositories: string[]}[]}
    }
    const picked = (field: string, repo = 'team/app') =>
      out.resolved.selections
        .find((s) => s.field === field && s.repository === `${p}/${repo}`)!
        .selected.map((t) => t.tag)
    expect(picked('spec.images[0]')).toEqual(['v1.28.4', 'v1.28.3', 'v1.28.2', 'v1.28.1', 'v1.28.0'])
    expect(picked('spec.images[1]')).toEqual(['v1.29.0', 'v1.28.4'])
    expect(picked('spec.images[2]')).toEqual(['v1.28.4', 'v1.28.3', 'v1.28.2', 'v1.28.1'])
    expect(picked('spec.images[3]', 'team/many')).toEqual([...MANY_TAGS].reverse())
    expect(out.resolved.repositories).toEqual([
      expect.objectContaining({field: 'spec.repositories[0]', repositories: ['team/app', 'team/many']}),
    ])
    expect(picked('spec.repositories[0]')).toEqual(['v1.29.0'])
    expect(picked('spec.repositories[0]', 'team/many')).toEqual(['2.0.119'])
    // Every tag once, in selection order.
    expect(out.resolved.images).toHaveLength(new Set(out.resolved.images).size)
    expect(out.resolved.images).toHaveLength(6 + 120)
    // The report says why the others were left out.
    const rc = out.resolved.selections[0].left.find((l) => l.tag === 'v1.29.0-rc.1')
    expect(rc?.reason).toBe('a prerelease, which >=1.28.0 <1.29.0 does not ask for')
    // 120 tags in pages of 25 (twice: the all selection and the catalog's latest: 1), and the catalog in pages of 2.
    const manyPages = proxy.listRequests.filter((q) => q.startsWith('/v2/team/many/tags/list'))
    expect(manyPages.length).toBe(10)
    expect(manyPages.filter((q) => /\?n=25&last=2\.0\.\d+$/.test(q))).toHaveLength(8)
    expect(proxy.listRequests.filter((q) => q.startsWith('/v2/_catalog')).length).toBe(2)
  })

  it('validate stays offline without --resolve and lists the selections as written', async () => {
    const file = await manifest(
      'offline',
      `  images:\n    - repository: 127.0.0.1:1/team/app\n      tags: {latest: 2}\n`,
    )
    const r = await runCli(['validate', file])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('spec.images[0]: 127.0.0.1:1/team/app {latest: 2}')
  })

  it('a selection that matches nothing exits 2, naming the repository and the selection at its line', async () => {
    const p = proxy.host
    const file = await manifest(
      'nomatch',
      `  images:\n    - repository: ${p}/team/app\n      tags: {semver: ">=3.0.0"}\n    - repository: ${p}/team/absent\n      tags: all\n`,
    )
    for (const args of [
      ['pull', file, '--store', join(dir, 'store-nomatch')],
      ['pull', file, '--dry-run'],
      ['lock', file],
      ['validate', file, '--resolve'],
    ]) {
      const r = await runCli(args)
      expect(r.code, `${args.join(' ')}\n${r.stderr}`).toBe(2)
      expect(r.stderr).toContain(
        `nomatch.yaml:8:13: spec.images[0].tags: no tag of ${p}/team/app matches {semver: ">=3.0.0"}: it has dev-abc, latest, v1.27.9`,
      )
      expect(r.stderr).toContain(
        `nomatch.yaml:10:13: spec.images[1].tags: no tag of ${p}/team/absent matches all: the registry does not know the repository`,
      )
      expect(r.stderr).not.toMatch(/\n\s+at /)
    }
  })

  it('pull --dry-run prints what each selection resolves to; pull takes exactly those tags', async () => {
    const p = proxy.host
    const file = await manifest(
      'pull',
      `  images:\n    - repository: ${p}/team/app\n      tags: {semver: "~1.28", latest: 2}\n`,
    )
    const dry = await runCli(['pull', file, '--dry-run'])
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toContain(`spec.images[0] ${p}/team/app {semver: "~1.28", latest: 2}: 2 of 10 tags`)
    expect(dry.stdout).toContain('  + v1.28.4  semver ~1.28, latest 2 (#1)')
    expect(dry.stdout).toContain('  - below the 2 highest: v1.28.2, v1.28.1, v1.28.0')
    expect(dry.stdout).toMatch(new RegExp(`^image +${p}/team/app:v1\\.28\\.3 +sha256:\\w{12} +linux/amd64 `, 'm'))
    expect(dry.stdout).toContain('would pull 2 images and 0 files into ')
    const store = join(dir, 'store-pull')
    const r = await runCli(['pull', file, '--store', store, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const index = JSON.parse(await readFile(join(store, 'images', 'index.json'), 'utf8')) as {
      manifests: {digest: string; annotations: Record<string, string>}[]
    }
    const names = index.manifests.map((m) => [m.annotations['org.opencontainers.image.ref.name'], m.digest]).sort()
    expect(names).toEqual([
      [`${p}/team/app:v1.28.3`, appDigest.get('v1.28.3')],
      [`${p}/team/app:v1.28.4`, appDigest.get('v1.28.4')],
    ])
    // bundle --manifest applies the selection to what the store holds, without a registry; build to what it pulled.
    const other = await manifest('pull-other', `  images:\n    - ${p}/team/app:v1.27.9\n`)
    expect((await runCli(['pull', other, '--store', store])).code).toBe(0)
    const b = await runCli(['bundle', '--manifest', file, '--store', store, '--out', join(dir, 'bundle-sel')])
    expect(b.code, b.stderr).toBe(0)
    const lock = JSON.parse(await readFile(join(dir, 'bundle-sel', 'bundle.json'), 'utf8')) as {images: {ref: string}[]}
    expect(lock.images.map((i) => i.ref).sort()).toEqual([`${p}/team/app:v1.28.3`, `${p}/team/app:v1.28.4`])
    const built = await runCli(['build', file, '--store', store, '--out', join(dir, 'build-sel')])
    expect(built.code, built.stderr).toBe(0)
    const lock2 = JSON.parse(await readFile(join(dir, 'build-sel', 'bundle.json'), 'utf8')) as {images: {ref: string}[]}
    expect(lock2.images.map((i) => i.ref).sort()).toEqual([`${p}/team/app:v1.28.3`, `${p}/team/app:v1.28.4`])
  })
})

describe('airlock lock', () => {
  async function skopeoDigest(ref: string): Promise<string> {
    const {stdout} = await run('skopeo', [
      'inspect',
      '--tls-verify=false',
      '--format',
      '{{.Digest}}',
      `docker://${ref}`,
    ])
    return stdout.trim()
  }

  it('pins every tag to the digest skopeo reports, keeps comments, and a second lock changes nothing', async () => {
    const p = proxy.host
    const file = await manifest(
      'lock',
      `  platforms: [linux/amd64]
  images:
    # the app, pinned by hand
    - ${p}/team/app:dev-abc   # built from main
    # the two newest releases
    - repository: ${p}/team/app
      tags: {latest: 2}   # release train
      platforms: [linux/amd64]
  # everything of the team
  repositories:
    - registry: ${p}
      include: "^team/many$"
      tags: {semver: ">=2.0.118"}
  binaries: []
`,
    )
    const out = join(dir, 'lock.locked.yaml')
    const r = await runCli(['lock', file, '--out', out, '--json'])
    expect(r.code, r.stderr).toBe(0)
    const result = JSON.parse(r.stdout) as {
      counts: Record<string, number>
      items: {ref: string; action: string; from?: string}[]
    }
    expect(result.counts).toEqual({images: 5, pinned: 5, unchanged: 0, selections: 1, repositories: 1, files: 0})
    expect(result.items.map((i) => [i.ref.replace(/@.*/, ''), i.action, i.from])).toEqual([
      [`${p}/team/app:dev-abc`, 'pinned', undefined],
      [`${p}/team/app:v1.29.0`, 'pinned', 'spec.images[1]'],
      [`${p}/team/app:v1.28.4`, 'pinned', 'spec.images[1]'],
      [`${p}/team/many:2.0.119`, 'pinned', 'spec.repositories[0]'],
      [`${p}/team/many:2.0.118`, 'pinned', 'spec.repositories[0]'],
    ])
    const locked = await readFile(out, 'utf8')
    const refs = [...locked.matchAll(/(?:- |ref: )(\S+@sha256:[0-9a-f]{64})/g)].map((m) => m[1])
    expect(refs.map((x) => x.replace(/@.*/, ''))).toEqual([
      `${p}/team/app:dev-abc`,
      `${p}/team/app:v1.29.0`,
      `${p}/team/app:v1.28.4`,
      `${p}/team/many:2.0.119`,
      `${p}/team/many:2.0.118`,
    ])
    for (const ref of refs) {
      const [name, digest] = ref.split('@')
      expect(digest, name).toBe(await skopeoDigest(name.replace(p, reg.host)))
    }
    expect(locked).toBe(`${head('lock')}  platforms: [linux/amd64]
  images:
    # the app, pinned by hand
    - ${refs[0]}   # built from main
    # the two newest releases
    # locked from repository: ${p}/team/app, tags: {latest: 2} (release train)
    - ref: ${refs[1]}
      platforms: [linux/amd64]
    - ref: ${refs[2]}
      platforms: [linux/amd64]
    # everything of the team
    # locked from repositories: registry: ${p}, include: "^team/many$", tags: {semver: ">=2.0.118"}
    - ref: ${refs[3]}
    - ref: ${refs[4]}
  binaries: []
`)
    // The original is untouched with --out.
    expect(await readFile(file, 'utf8')).toContain('tags: {latest: 2}')
    const again = await runCli(['lock', out, '--json'])
    expect(again.code, again.stderr).toBe(0)
    expect(JSON.parse(again.stdout)).toMatchObject({
      changed: false,
      counts: {images: 5, pinned: 0, unchanged: 5, selections: 0, repositories: 0},
    })
    const plain = await runCli(['lock', out])
    expect(plain.stdout).toContain(`total: 5 images; ${out} was locked already, nothing changed`)
    expect(await readFile(out, 'utf8')).toBe(locked)
    const valid = await runCli(['validate', out])
    expect(valid.code, valid.stderr).toBe(0)
  })

  it('pins every checksumUrl file to the sha256 its checksum file gives, keeps checksumUrl, and the locked manifest no longer reads it', async () => {
    const web = await startNginx()
    try {
      const tool = Buffer.from('a tool, version 1\n')
      const hex = createHash('sha256').update(tool).digest('hex')
      await writeFile(join(web.root, 'tool'), tool)
      await writeFile(join(web.root, 'SHA256SUMS'), `${'0'.repeat(64)}  other\n${hex}  tool\n`)
      const file = await manifest(
        'lock-files',
        `  binaries:
    - url: ${web.url}/tool
      checksumUrl: ${web.url}/SHA256SUMS   # upstream's sums
`,
      )
      const r = await runCli(['lock', file, '--json'])
      expect(r.code, r.stderr).toBe(0)
      const json = JSON.parse(r.stdout) as {
        changed: boolean
        files: {url: string; sha256: string; action: string}[]
        counts: {files: number}
      }
      expect(json.files).toEqual([
        {url: `${web.url}/tool`, sha256: hex, checksumUrl: `${web.url}/SHA256SUMS`, action: 'pinned'},
      ])
      expect(json.counts.files).toBe(1)
      const locked = await readFile(file, 'utf8')
      expect(locked).toBe(`${head('lock-files')}  binaries:
    - url: ${web.url}/tool
      checksumUrl: ${web.url}/SHA256SUMS   # upstream's sums
      sha256: ${hex}
`)
      const again = await runCli(['lock', file])
      expect(again.code, again.stderr).toBe(0)
      expect(again.stdout).toContain('was locked already, nothing changed')
      expect(await readFile(file, 'utf8')).toBe(locked)
      // Exact: the checksum file may change or go; the locked manifest pulls what was locked.
      await writeFile(join(web.root, 'SHA256SUMS'), `${'1'.repeat(64)}  tool\n`)
      const pull = await runCli(['pull', file, '--store', join(dir, 'store-lock-files')])
      expect(pull.code, pull.stderr).toBe(0)
    } finally {
      await web.stop()
    }
  })

  it('a locked multi-arch tag with a platform subset builds the same images as the unlocked one; a digest alone keeps the whole index', async () => {
    const p = proxy.host
    const multi = await pushImage(reg, {
      repository: 'team/multi',
      tag: '1.0',
      platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7'],
      layerSize: 2048,
    })
    const file = await manifest(
      'multi',
      `  platforms: [linux/amd64, linux/arm64]
  images:
    - ${p}/team/multi:1.0
    - ref: ${p}/team/multi@${multi.digest}
      platforms: [linux/amd64]
`,
    )
    type Img = {ref: string; digest: string; platforms: string[]; sourceDigest?: string}
    const build = async (m: string, name: string): Promise<{images: Img[]; stderr: string}> => {
      const out = join(dir, name)
      const r = await runCli(['build', m, '--store', join(dir, `${name}-store`), '--out', out, '--no-importer'])
      expect(r.code, r.stderr).toBe(0)
      return {
        images: (JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8')) as {images: Img[]}).images,
        stderr: r.stderr,
      }
    }
    const unlocked = await build(file, 'multi-unlocked')
    const lockedFile = join(dir, 'multi.locked.yaml')
    const l = await runCli(['lock', file, '--out', lockedFile])
    expect(l.code, l.stderr).toBe(0)
    expect(await readFile(lockedFile, 'utf8')).toContain(`- ${p}/team/multi:1.0@${multi.digest}\n`)
    const locked = await build(lockedFile, 'multi-locked')

    // The tag: the same filtered index either way, the upstream (locked) digest as its source.
    const byTag = unlocked.images.find((i) => i.ref === `${p}/team/multi:1.0`)!
    const byLock = locked.images.find((i) => i.ref === `${p}/team/multi:1.0@${multi.digest}`)!
    expect(byTag).toMatchObject({platforms: ['linux/amd64', 'linux/arm64'], sourceDigest: multi.digest})
    expect(byTag.digest).not.toBe(multi.digest)
    expect(byLock).toMatchObject({digest: byTag.digest, platforms: byTag.platforms, sourceDigest: multi.digest})
    expect(locked.images.map((i) => i.digest)).toEqual(unlocked.images.map((i) => i.digest))
    // The digest alone: the whole index, every platform, and a note saying so, in both builds.
    for (const b of [unlocked, locked]) {
      const pinned = b.images.find((i) => i.ref === `${p}/team/multi@${multi.digest}`)!
      expect(pinned).toMatchObject({digest: multi.digest, platforms: ['linux/amd64', 'linux/arm64', 'linux/arm/v7']})
      expect(pinned.sourceDigest).toBeUndefined()
      expect(b.stderr).toContain(
        `${p}/team/multi@${multi.digest}: pinned to an index digest with no tag; carrying all 3 platforms`,
      )
      expect(b.stderr).not.toContain(`${p}/team/multi:1.0@${multi.digest}: pinned`)
    }
  })
})
