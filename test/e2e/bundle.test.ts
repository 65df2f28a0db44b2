import {execFile, spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {readdir, readFile, rm, stat, writeFile} from 'node:fs/promises'
import {createServer, type Server} from 'node:http'
import type {AddressInfo} from 'node:net'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {repoRoot, runCli} from '../helpers/cli.js'
import {executablePath, ownArch} from '../helpers/executable.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {DEFAULT_IMAGES, makeStoreFixture, type StoreFixture, type StoreImageSpec} from '../helpers/store-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex')

/** The manifest bytes the registry serves for a reference, read by skopeo (independent of airlock). */
async function served(ref: string): Promise<Buffer> {
  return (
    await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {
      encoding: 'buffer',
      maxBuffer: 16 << 20,
    })
  ).stdout
}

/** The digest the registry serves for a reference. */
async function servedDigest(ref: string): Promise<string> {
  return `sha256:${sha256(await served(ref))}`
}

const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'

// The defaults (OCI single, Docker single, OCI multi-arch index) and a Docker manifest list.
const IMAGES: StoreImageSpec[] = [
  ...DEFAULT_IMAGES,
  {
    ref: 'docker.io/library/busybox:1.36',
    format: 'docker',
    platforms: ['linux/amd64', 'linux/arm/v7'],
    layers: 1,
    layerSize: 8_000,
  },
]

let reg: RegistryServer
let store: StoreFixture
let out: string

beforeAll(async () => {
  reg = await startRegistry()
  store = await makeStoreFixture({images: IMAGES})
  out = await makeTempDir('airlock-e2e-bundle-')
})

afterAll(async () => {
  await reg?.stop()
})

describe('airlock bundle, verify, inspect', () => {
  it('bundle --json reports every file written; verify and inspect read it', async () => {
    const r = await runCli(['bundle', '--store', store.root, '--out', out, '--json'])
    expect(r.stderr).not.toMatch(/Error/)
    expect(r.code).toBe(0)
    const result = JSON.parse(r.stdout)
    const exe = `airlock-linux-${ownArch}`
    expect(result.items.map((w: {name: string}) => w.name)).toEqual([
      'offline-files.tar.gz',
      'component-tools.tar.gz',
      'offline-images.tar',
      exe,
      'import.sh',
      'bundle.json',
      'SHA256SUMS',
    ])
    expect(result).toMatchObject({
      counts: {images: IMAGES.length, files: store.files.length + 1, written: 7},
      name: 'fixture',
    })
    // The importer: this machine's standalone executable, byte for byte, and import.sh, both executable, in bundle.json and SHA256SUMS.
    const lock = JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8'))
    const exeBytes = await readFile(executablePath)
    const script = await readFile(join(repoRoot, 'src/lib/bundle/write/import.sh'))
    expect(lock.tools).toEqual([
      {path: exe, platform: `linux/${ownArch}`, size: exeBytes.length, sha256: sha256(exeBytes)},
      {path: 'import.sh', size: script.length, sha256: sha256(script)},
    ])
    expect(sha256(await readFile(join(out, exe)))).toBe(sha256(exeBytes))
    for (const t of [exe, 'import.sh']) expect((await stat(join(out, t))).mode & 0o777, t).toBe(0o755)
    await run('sha256sum', ['-c', 'SHA256SUMS'], {cwd: out})

    const v = await runCli(['verify', out, '--json'])
    expect(v.code).toBe(0)
    const verified = JSON.parse(v.stdout)
    expect(verified).toMatchObject({
      ok: true,
      counts: {images: IMAGES.length, files: store.files.length + 1, checked: 6},
    })
    expect(verified.items.map((x: {name: string}) => x.name)).toEqual([
      exe,
      'bundle.json',
      'component-tools.tar.gz',
      'import.sh',
      'offline-files.tar.gz',
      'offline-images.tar',
    ])

    const i = await runCli(['inspect', out, '--json'])
    expect(i.code).toBe(0)
    const shape = JSON.parse(i.stdout)
    expect(Object.keys(shape)).toEqual(['name', 'version', 'counts', 'images', 'files', 'tools', 'delta'])
    expect(shape.counts).toMatchObject({
      images: store.images.length,
      binaries: expect.any(Number),
      packages: expect.any(Number),
    })
    expect(shape.tools.map((t: {path: string; platform: string | null}) => `${t.path} ${t.platform}`)).toEqual([
      `${exe} linux/${ownArch}`,
      'import.sh null',
    ])
    expect(shape.delta).toBeNull()
    expect(shape.images.map((x: {ref: string}) => x.ref)).toEqual(store.images.map((x) => x.ref).sort())
    expect(shape.images.find((x: {ref: string}) => x.ref === 'quay.io/example/multi:1.0').platforms).toEqual([
      'linux/amd64',
      'linux/arm64',
    ])
    expect(shape.files[0]).toEqual({
      kind: 'binary',
      path: expect.any(String),
      size: expect.any(Number),
      sha256: expect.stringMatching(/^[0-9a-f]{64}$/),
      url: expect.any(String),
      fromBase: false,
      os: null,
    })

    const human = await runCli(['inspect', out])
    expect(human.stdout).toMatch(/REF +DIGEST +PLATFORMS +SIZE/)
    expect(human.stdout).toContain('linux/amd64,linux/arm64')
  })

  // skopeo 1.9 (Debian bookworm) resolves a name only on OCI-typed index.json entries; Docker content is
  // listed under its OCI twin type (as pull writes it), so every image is found, Docker ones included.
  // Every digest survives but a Docker manifest list's: skopeo 1.9.3 takes the list's type from that
  // entry and pushes the list re-serialized as an OCI index (same child manifests, new bytes, new digest).
  // `airlock import registry` keeps it byte for byte.
  it("skopeo copies every image out of offline-images.tar, OCI and Docker, single and multi-arch, at bundle.json's digests", async () => {
    const lock = JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8')) as {
      images: {ref: string; digest: string; mediaType: string}[]
    }
    expect(lock.images.map((i) => `${i.mediaType} ${i.ref}`).sort()).toEqual([
      'application/vnd.docker.distribution.manifest.list.v2+json docker.io/library/busybox:1.36',
      'application/vnd.docker.distribution.manifest.v2+json registry.k8s.io/pause:3.9',
      'application/vnd.oci.image.index.v1+json quay.io/example/multi:1.0',
      'application/vnd.oci.image.manifest.v1+json docker.io/library/nginx:1.25.3',
    ])
    for (const img of lock.images) {
      expect(img.digest, img.ref).toBe(store.images.find((i) => i.ref === img.ref)!.digest)
      const target = `${reg.host}/copied/${img.ref.split('/').slice(1).join('/')}`
      await run('skopeo', [
        'copy',
        '--all',
        '--dest-tls-verify=false',
        `oci-archive:${join(out, 'offline-images.tar')}:${img.ref}`,
        `docker://${target}`,
      ]).catch((err: {stderr?: string}) => {
        throw new Error(`skopeo could not copy ${img.ref}: ${err.stderr}`)
      })
      if (img.mediaType !== DOCKER_LIST) {
        expect(await servedDigest(target), img.ref).toBe(img.digest)
        continue
      }
      type List = {mediaType: string; manifests: {mediaType: string; digest: string; size: number; platform: object}[]}
      const original = JSON.parse(
        await readFile(join(store.root, 'images/blobs/sha256', img.digest.slice(7)), 'utf8'),
      ) as List
      const pushed = JSON.parse((await served(target)).toString()) as List
      expect(pushed.mediaType).toBe('application/vnd.oci.image.index.v1+json')
      expect(pushed.manifests).toEqual(original.manifests)
      const repo = target.split(':').slice(0, -1).join(':')
      for (const child of original.manifests)
        expect(await servedDigest(`${repo}@${child.digest}`), `${img.ref} ${child.digest}`).toBe(child.digest)
    }
  })

  it('verify exits 2 and names each problem, as when bundle.json is missing', async () => {
    const bad = await makeTempDir()
    await run('cp', ['-r', `${out}/.`, bad])
    const tar = await readFile(join(bad, 'offline-images.tar'))
    tar[tar.length - 5000] ^= 0xff
    await writeFile(join(bad, 'offline-images.tar'), tar)
    const v = await runCli(['verify', bad])
    expect(v.code).toBe(2)
    expect(v.stderr).toMatch(/offline-images\.tar: sha256 .* does not match SHA256SUMS/)
    const j = await runCli(['verify', bad, '--json'])
    expect(j.code).toBe(2)
    expect(JSON.parse(j.stdout).error).toMatchObject({
      kind: 'bundle',
      exitCode: 2,
      details: expect.arrayContaining([expect.stringMatching(/does not match SHA256SUMS/)]),
    })
    const none = await runCli(['verify', await makeTempDir()])
    expect(none.code).toBe(2)
    expect(none.stderr).toMatch(/bundle\.json is missing/)
  })

  it('verify checks the importer: a changed or missing tool is a problem, and so is one bundle.json does not list', async () => {
    const bad = await makeTempDir()
    await run('cp', ['-r', `${out}/.`, bad])
    await writeFile(join(bad, 'import.sh'), `${await readFile(join(bad, 'import.sh'), 'utf8')}rm -rf /\n`)
    await rm(join(bad, `airlock-linux-${ownArch}`))
    const v = await runCli(['verify', bad, '--json'])
    expect(v.code).toBe(2)
    const problems = JSON.parse(v.stdout).error.details as string[]
    expect(problems).toContainEqual(expect.stringMatching(/^import\.sh: \d+ bytes, bundle\.json says \d+$/))
    expect(problems).toContainEqual(
      expect.stringMatching(/^import\.sh: sha256 [0-9a-f]{64}, bundle\.json says [0-9a-f]{64}$/),
    )
    expect(problems).toContainEqual(`airlock-linux-${ownArch}: missing (bundle.json lists it under tools)`)
    // Listed in SHA256SUMS but dropped from bundle.json: not in the bundle as verify sees it.
    await run('cp', ['-r', `${out}/.`, bad])
    const lock = JSON.parse(await readFile(join(bad, 'bundle.json'), 'utf8'))
    await writeFile(
      join(bad, 'bundle.json'),
      JSON.stringify({...lock, tools: lock.tools.filter((t: {path: string}) => t.path !== 'import.sh')}),
    )
    const sums = (await readFile(join(bad, 'SHA256SUMS'), 'utf8')).replace(
      /^[0-9a-f]{64}  bundle\.json$/m,
      `${sha256(await readFile(join(bad, 'bundle.json')))}  bundle.json`,
    )
    await writeFile(join(bad, 'SHA256SUMS'), sums)
    const w = await runCli(['verify', bad, '--json'])
    expect(w.code).toBe(2)
    expect(JSON.parse(w.stdout).error.details).toEqual(['SHA256SUMS: lists import.sh, which is not in the bundle'])
  })

  it('the same store and the same airlock give byte-identical bundles, importer included; --no-importer drops it', async () => {
    const again = await makeTempDir()
    expect((await runCli(['bundle', '--store', store.root, '--out', again, '--quiet'])).code).toBe(0)
    const names = (await readdir(out)).sort()
    expect((await readdir(again)).sort()).toEqual(names)
    for (const n of names) expect(sha256(await readFile(join(again, n))), n).toBe(sha256(await readFile(join(out, n))))
    // Written again without the importer: the old executable and import.sh go too, nothing unlisted stays behind.
    const r = await runCli(['bundle', '--store', store.root, '--out', again, '--no-importer', '--json'])
    expect(r.code).toBe(0)
    expect((await readdir(again)).sort()).toEqual([
      'SHA256SUMS',
      'bundle.json',
      'component-tools.tar.gz',
      'offline-files.tar.gz',
      'offline-images.tar',
    ])
    expect(JSON.parse(await readFile(join(again, 'bundle.json'), 'utf8')).tools).toEqual([])
    expect((await runCli(['verify', again])).code).toBe(0)
  })

  it('--importer takes linux/amd64 and linux/arm64 only, and not with --no-importer (exit 2, nothing written)', async () => {
    const dir = await makeTempDir()
    const bad = await runCli(['bundle', '--store', store.root, '--out', dir, '--importer', 'linux/s390x'])
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(
      /--importer linux\/s390x: the standalone executable is built for linux\/amd64 and linux\/arm64 only/,
    )
    expect(
      (await runCli(['bundle', '--store', store.root, '--out', dir, '--importer', 'linux/amd64', '--no-importer']))
        .code,
    ).toBe(2)
    expect(await readdir(dir)).toEqual([])
  })

  it('--split parts verify, and rejoined with cat skopeo reads them', async () => {
    const dir = await makeTempDir()
    const r = await runCli(['bundle', '--store', store.root, '--out', dir, '--split', '40K', '--no-importer'])
    expect(r.code).toBe(0)
    expect((await readdir(dir)).filter((n) => n.startsWith('offline-images.tar.')).length).toBeGreaterThan(1)
    expect((await runCli(['verify', dir])).code).toBe(0)
    expect((await runCli(['inspect', dir, '--json'])).code).toBe(0)
    await run('sh', ['-c', 'cat offline-images.tar.* > ../joined.tar && sha256sum -c SHA256SUMS'], {cwd: dir})
    const multi = store.images.find((i) => i.platforms.length > 1)!
    await run('skopeo', [
      'copy',
      '--all',
      '--dest-tls-verify=false',
      `oci-archive:${join(dir, '..', 'joined.tar')}:${multi.ref}`,
      `docker://${reg.host}/split/multi:1.0`,
    ])
    expect(await servedDigest(`${reg.host}/split/multi:1.0`)).toBe(multi.digest)
  })

  it('bad --split and a store without records are usage errors (exit 2)', async () => {
    expect(
      (await runCli(['bundle', '--store', store.root, '--out', await makeTempDir(), '--split', 'lots'])).code,
    ).toBe(2)
    const r = await runCli(['bundle', '--store', await makeTempDir(), '--out', await makeTempDir()])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/records\.json/)
  })
})

describe('an interrupted bundle', () => {
  it('leaves no archive under a final name, and the next run cleans up and succeeds', async () => {
    const big = await makeStoreFixture({
      images: [{ref: 'docker.io/library/big:1', layers: 2, layerSize: 40 << 20}],
      files: [{kind: 'binary', path: 'example.com/big.bin', size: 60 << 20, compressible: true}],
    })
    const dir = await makeTempDir()
    const child = spawn(
      process.execPath,
      [join(repoRoot, 'bin', 'run.js'), 'bundle', '--store', big.root, '--out', dir, '--quiet', '--no-importer'],
      {stdio: 'ignore'},
    )
    const exited = new Promise((r) => child.once('exit', r))
    // Kill it once its temporary archives hold some bytes.
    for (let i = 0; i < 200; i++) {
      const temps = (await readdir(dir)).filter((n) => n.endsWith('.tmp'))
      if (temps.length >= 2) break
      await new Promise((r) => setTimeout(r, 25))
    }
    child.kill('SIGKILL')
    await exited
    const left = await readdir(dir)
    expect(left.filter((n) => n.endsWith('.tmp')).length).toBeGreaterThan(0)
    expect(left.filter((n) => !n.startsWith('.'))).toEqual([])
    const r = await runCli(['bundle', '--store', big.root, '--out', dir, '--no-importer'])
    expect(r.code).toBe(0)
    expect((await readdir(dir)).sort()).toEqual([
      'SHA256SUMS',
      'bundle.json',
      'component-tools.tar.gz',
      'offline-files.tar.gz',
      'offline-images.tar',
    ])
    expect((await runCli(['verify', dir])).code).toBe(0)
  })
})

describe('airlock build', () => {
  let files: Server
  let filesUrl: string
  const kubeadm = Buffer.from(`#!/bin/sh\necho kubeadm ${Date.now()}\n`)

  beforeAll(async () => {
    files = createServer((req, res) => {
      if (req.url === '/release/v1.29.0/kubeadm') res.end(kubeadm)
      else res.writeHead(404).end()
    })
    await new Promise<void>((r) => files.listen(0, '127.0.0.1', r))
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`
    // Images reach the registry through skopeo from a bundle of the fixture store: no pull involved.
    const src = await makeTempDir()
    expect((await runCli(['bundle', '--store', store.root, '--out', src, '--no-importer'])).code).toBe(0)
    for (const img of store.images.filter((i) => i.platforms.length > 1)) {
      await run('skopeo', [
        'copy',
        '--all',
        '--dest-tls-verify=false',
        `oci-archive:${join(src, 'offline-images.tar')}:${img.ref}`,
        `docker://${reg.host}/src/${img.ref.split('/').at(-1)}`,
      ])
    }
  })

  afterAll(async () => {
    await new Promise((r) => files?.close(r))
  })

  it('pulls a manifest and writes a bundle that verify accepts and skopeo reads', async () => {
    const dir = await makeTempDir()
    const multi = store.images.find((i) => i.platforms.length > 1)!
    const manifest = join(dir, 'airlock.yaml')
    await writeFile(
      manifest,
      [
        'apiVersion: airlock/v1',
        'kind: Manifest',
        'metadata:',
        '  name: build-test',
        '  version: "2.0"',
        'spec:',
        '  images:',
        `    - ref: ${reg.host}/src/${multi.ref.split('/').at(-1)}`,
        '      platforms: [all]',
        '  binaries:',
        `    - url: ${filesUrl}/release/v1.29.0/kubeadm`,
        `      sha256: ${sha256(kubeadm)}`,
        '',
      ].join('\n'),
    )
    const bundle = join(dir, 'bundle')
    const r = await runCli(['build', manifest, '--store', join(dir, 'store'), '--out', bundle, '--json'])
    expect(r.stderr).not.toMatch(/Error:/)
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({
      name: 'build-test',
      version: '2.0',
      counts: {images: 1, files: 1},
      pull: {counts: {images: 1, files: 1}},
    })
    expect((await runCli(['verify', bundle])).code).toBe(0)
    // build carries the importer as bundle does.
    expect(
      JSON.parse(await readFile(join(bundle, 'bundle.json'), 'utf8')).tools.map((t: {path: string}) => t.path),
    ).toEqual([`airlock-linux-${ownArch}`, 'import.sh'])
    const list = (await run('tar', ['-tzf', join(bundle, 'offline-files.tar.gz')])).stdout
    expect(list).toContain(`offline-files/127.0.0.1:${filesUrl.split(':').at(-1)}/release/v1.29.0/kubeadm`)
    const ref = `${reg.host}/src/${multi.ref.split('/').at(-1)}`
    await run('skopeo', [
      'copy',
      '--all',
      '--dest-tls-verify=false',
      `oci-archive:${join(bundle, 'offline-images.tar')}:${ref}`,
      `docker://${reg.host}/built/multi:1.0`,
    ])
    expect(await servedDigest(`${reg.host}/built/multi:1.0`)).toBe(multi.digest)
  })

  it('build bundles exactly what its manifest names; bundle says it takes the whole store, and --manifest narrows it', async () => {
    // A used store: the fixture's images and records, then a one-image manifest built into it.
    const used = await makeStoreFixture({images: IMAGES})
    const dir = await makeTempDir()
    const multi = used.images.find((i) => i.platforms.length > 1)!
    const ref = `${reg.host}/src/${multi.ref.split('/').at(-1)}`
    const manifest = join(dir, 'small.yaml')
    await writeFile(
      manifest,
      [
        'apiVersion: airlock/v1',
        'kind: Manifest',
        'metadata: {name: small}',
        'spec:',
        '  images:',
        `    - {ref: ${ref}, platforms: [all]}`,
        '  binaries:',
        `    - url: ${filesUrl}/release/v1.29.0/kubeadm`,
        `      sha256: ${sha256(kubeadm)}`,
        '',
      ].join('\n'),
    )
    const lockOf = async (b: string) =>
      JSON.parse(await readFile(join(b, 'bundle.json'), 'utf8')) as {
        name: string
        images: {ref: string}[]
        files: {path: string}[]
      }
    const indexOf = async (b: string) =>
      (await run('tar', ['-xOf', join(b, 'offline-images.tar'), 'index.json'])).stdout

    const built = join(dir, 'built')
    const r = await runCli(['build', manifest, '--store', used.root, '--out', built])
    expect(r.code, r.stderr).toBe(0)
    expect((await lockOf(built)).images.map((i) => i.ref)).toEqual([ref])
    expect((await lockOf(built)).files.map((f) => f.path)).toEqual([
      `127.0.0.1:${filesUrl.split(':').at(-1)}/release/v1.29.0/kubeadm`,
    ])
    expect(JSON.parse(await indexOf(built)).manifests).toHaveLength(1)
    expect((await runCli(['verify', built])).code).toBe(0)

    const whole = join(dir, 'whole')
    const all = await runCli(['bundle', '--store', used.root, '--out', whole])
    expect(all.code, all.stderr).toBe(0)
    expect(all.stderr).toContain('bundling everything in the store')
    expect((await lockOf(whole)).images).toHaveLength(IMAGES.length + 1)

    const narrowed = join(dir, 'narrowed')
    const some = await runCli(['bundle', '--store', used.root, '--out', narrowed, '--manifest', manifest])
    expect(some.code, some.stderr).toBe(0)
    expect(some.stderr).not.toContain('bundling everything')
    expect(await readFile(join(narrowed, 'bundle.json'))).toEqual(await readFile(join(built, 'bundle.json')))
    expect(await readFile(join(narrowed, 'offline-images.tar'))).toEqual(
      await readFile(join(built, 'offline-images.tar')),
    )
  })
})
