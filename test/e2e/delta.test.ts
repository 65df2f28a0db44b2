import {execFile} from 'node:child_process'
import {createHash, randomBytes} from 'node:crypto'
import {mkdir, readdir, readFile, stat, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {HeadBucketCommand} from '@aws-sdk/client-s3'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {formatBytes} from '../../src/lib/ui/format.js'
import {runCli} from '../helpers/cli.js'
import {type Blob, type PushedImage, pushImage, randomLayer} from '../helpers/images.js'
import {type NginxServer, startNginx} from '../helpers/nginx.js'
import {type RegistryServer, startRegistry} from '../helpers/registry.js'
import {type S3Server, startRgw} from '../helpers/rgw.js'
import {makeTempDir} from '../helpers/tmp.js'

const run = promisify(execFile)
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex')

// A bastion's life across two versions: one store, v1 pulled and bundled,
// then v2 (two images changed, one of them on v1's base layers, one binary
// changed) pulled into the same store and bundled as a delta of v1.

let src: RegistryServer
let web: NginxServer
let dir: string
let store: string
let base: Blob
const img: Record<string, PushedImage> = {}
/** `bundle --manifest v2.yaml --since v1 --json`. */
let deltaResult: {delta: {carried: {blobs: number}}; counts: {bytesOut: number}}
const kubeadm = randomBytes(60_000)
const tool10 = randomBytes(40_000)
const tool11 = randomBytes(41_000)

function manifest(version: string, images: PushedImage[], files: {path: string; data: Buffer}[]): string {
  return [
    'apiVersion: airlock/v1',
    'kind: Manifest',
    `metadata: {name: delta-test, version: "${version}"}`,
    'spec:',
    '  images:',
    ...images.map((i) => `    - ${i.ref}`),
    '  binaries:',
    ...files.map((f) => `    - {url: "${web.url}/${f.path}", sha256: ${sha(f.data)}}`),
    '',
  ].join('\n')
}

/** Every blob file offline-images.tar holds, read with tar(1). */
async function archivedBlobs(bundle: string): Promise<string[]> {
  const {stdout} = await run('tar', ['-tf', join(bundle, 'offline-images.tar')])
  return stdout
    .split('\n')
    .map((l) => /^blobs\/sha256\/([0-9a-f]{64})$/.exec(l)?.[1])
    .filter((h): h is string => h !== undefined)
    .map((h) => `sha256:${h}`)
    .sort()
}

async function archivedFiles(bundle: string): Promise<string[]> {
  const {stdout} = await run('tar', ['-tzf', join(bundle, 'offline-files.tar.gz')])
  return stdout.split('\n').filter((l) => l !== '' && !l.endsWith('/'))
}

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args)
  if (r.code !== 0) throw new Error(`airlock ${args.join(' ')}: exit ${r.code}\n${r.stderr}\n${r.stdout}`)
  return r.stdout
}

/** Every digest of an image: configs, layers, platform manifests, the top manifest. */
function digestsOf(i: PushedImage): string[] {
  return [i.digest, ...i.blobs.map((b) => b.digest), ...(i.children ?? []).map((c) => c.digest)]
}

beforeAll(async () => {
  src = await startRegistry()
  web = await startNginx()
  dir = await makeTempDir('airlock-e2e-delta-')
  store = join(dir, 'store')
  base = randomLayer(120_000)
  img.app1 = await pushImage(src, {repository: 'team/app', tag: '1.0', baseLayers: [base], layerSize: 30_000})
  img.app2 = await pushImage(src, {repository: 'team/app', tag: '2.0', baseLayers: [base], layerSize: 30_000})
  img.tool1 = await pushImage(src, {
    repository: 'team/tool',
    tag: '1.0',
    format: 'docker',
    layers: 2,
    layerSize: 20_000,
  })
  img.tool2 = await pushImage(src, {
    repository: 'team/tool',
    tag: '2.0',
    format: 'docker',
    layers: 2,
    layerSize: 20_000,
  })
  img.same = await pushImage(src, {
    repository: 'team/same',
    tag: '1.0',
    platforms: ['linux/amd64', 'linux/arm64'],
    layerSize: 25_000,
  })
  const files = {'rel/kubeadm': kubeadm, 'rel/tool-1.0': tool10, 'rel/tool-1.1': tool11}
  for (const [p, data] of Object.entries(files)) {
    await mkdir(join(web.root, 'rel'), {recursive: true})
    await writeFile(join(web.root, p), data)
  }
  await writeFile(
    join(dir, 'v1.yaml'),
    manifest(
      '1.0.0',
      [img.app1, img.tool1, img.same],
      [
        {path: 'rel/kubeadm', data: kubeadm},
        {path: 'rel/tool-1.0', data: tool10},
      ],
    ),
  )
  await writeFile(
    join(dir, 'v2.yaml'),
    manifest(
      '2.0.0',
      [img.app2, img.tool2, img.same],
      [
        {path: 'rel/kubeadm', data: kubeadm},
        {path: 'rel/tool-1.1', data: tool11},
      ],
    ),
  )
  // [all] is not asked: same:1.0 keeps linux/amd64 only, a rewritten index, in both versions alike.
  await cli(['build', '--no-importer', join(dir, 'v1.yaml'), '--store', store, '--out', join(dir, 'v1'), '--quiet'])
  await cli([
    'build',
    '--no-importer',
    join(dir, 'v2.yaml'),
    '--store',
    store,
    '--out',
    join(dir, 'v2-full'),
    '--quiet',
  ])
  deltaResult = JSON.parse(
    await cli([
      'bundle',
      '--no-importer',
      '--store',
      store,
      '--manifest',
      join(dir, 'v2.yaml'),
      '--since',
      join(dir, 'v1'),
      '--out',
      join(dir, 'v2-delta'),
      '--json',
    ]),
  )
}, 240_000)

afterAll(async () => {
  await web?.stop()
  await src?.stop()
})

/** Every file under `dir` with its size and mtime: what "nothing was written" is checked against. */
async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = []
  const walk = async (d: string): Promise<void> => {
    for (const e of await readdir(d, {withFileTypes: true}).catch(() => [])) {
      const p = join(d, e.name)
      if (e.isDirectory()) {
        out.push(`${p}/`)
        await walk(p)
      } else {
        const st = await stat(p)
        out.push(`${p} ${st.size} ${st.mtimeMs}`)
      }
    }
  }
  await walk(dir)
  return out.sort()
}

/** The v2 images' target references in a registry (the source host dropped) and the digest each must have. */
async function v2Targets(host: string): Promise<[string, string][]> {
  const lock = JSON.parse(await readFile(join(dir, 'v2-full', 'bundle.json'), 'utf8')) as {
    images: {ref: string; digest: string}[]
  }
  return lock.images.map((i) => [`${host}/${i.ref.slice(i.ref.indexOf('/') + 1)}`, i.digest])
}

describe('delta bundles (--since)', () => {
  it('carries exactly the new blobs and the changed file; bundle.json still lists everything, plus base', async () => {
    const out = join(dir, 'v2-delta')
    const r = deltaResult
    const v1Bytes = await readFile(join(dir, 'v1', 'bundle.json'))

    // New in v2: app:2.0's own layer, config and manifest (its base layer is v1's), tool:2.0 whole.
    const v1Digests = new Set([...digestsOf(img.app1), ...digestsOf(img.tool1)])
    const expected = [...digestsOf(img.app2), ...digestsOf(img.tool2)].filter((d) => !v1Digests.has(d))
    expect(expected).not.toContain(base.digest)
    expect(await archivedBlobs(out)).toEqual([...new Set(expected)].sort())
    expect(await archivedFiles(out)).toEqual([`offline-files/${web.host}/rel/tool-1.1`])

    const lock = JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8'))
    const full = JSON.parse(await readFile(join(dir, 'v2-full', 'bundle.json'), 'utf8'))
    expect(lock.base).toEqual([{name: 'delta-test', version: '1.0.0', lockSha256: sha(v1Bytes)}])
    expect(lock.images).toEqual(full.images)
    expect(lock.files.map((f: {path: string; sha256: string}) => [f.path, f.sha256])).toEqual(
      full.files.map((f: {path: string; sha256: string}) => [f.path, f.sha256]),
    )
    expect(lock.files.filter((f: {fromBase?: boolean}) => f.fromBase).map((f: {path: string}) => f.path)).toEqual([
      `${web.host}/rel/kubeadm`,
    ])
    expect(lock.blobs.map((b: {digest: string}) => b.digest)).toEqual(full.blobs.map((b: {digest: string}) => b.digest))
    expect(lock.blobs.filter((b: {fromBase?: boolean}) => !b.fromBase).map((b: {digest: string}) => b.digest)).toEqual(
      [...new Set(expected)].sort(),
    )
    expect(r.delta.carried.blobs).toBe(new Set(expected).size)
    expect(r.counts.bytesOut).toBeLessThan(full.blobs.reduce((n: number, b: {size: number}) => n + b.size, 0))

    const v = JSON.parse(await cli(['verify', out, '--json']))
    expect(v.delta).toMatchObject({carried: {blobs: new Set(expected).size, files: 1}, fromBase: {files: 1}})
    expect(v.delta.fromBase.blobs).toBe(lock.blobs.length - new Set(expected).size)
    await cli(['verify', out, '--base', join(dir, 'v1')])

    const human = await cli(['inspect', out])
    expect(human).toMatch(/expected from base +\d+ +1 +/)
    expect(human).toMatch(/carried +\d+ +1 +/)
  })

  it('verify --base refuses a base that does not hold what the delta leaves out', async () => {
    const r = await runCli(['verify', join(dir, 'v2-delta'), '--base', join(dir, 'v2-delta')])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(base.digest)
    expect(r.stderr).toContain('no base carries it')
  })

  it('reproducible: the same store and base give byte-identical archives; build --since gives the same', async () => {
    const again = join(dir, 'v2-delta-again')
    await cli([
      'build',
      '--no-importer',
      join(dir, 'v2.yaml'),
      '--store',
      store,
      '--since',
      join(dir, 'v1', 'bundle.json'),
      '--out',
      again,
      '--quiet',
    ])
    for (const f of [
      'offline-images.tar',
      'offline-files.tar.gz',
      'component-tools.tar.gz',
      'bundle.json',
      'SHA256SUMS',
    ]) {
      expect(sha(await readFile(join(again, f))), f).toBe(sha(await readFile(join(dir, 'v2-delta', f))))
    }
  })

  it('a delta of a delta: v3 since v2-delta carries only what v3 adds; verify with the chain', async () => {
    img.tool3 = await pushImage(src, {
      repository: 'team/tool',
      tag: '3.0',
      format: 'docker',
      layers: 1,
      layerSize: 10_000,
    })
    await writeFile(
      join(dir, 'v3.yaml'),
      manifest(
        '3.0.0',
        [img.app2, img.tool3, img.same],
        [
          {path: 'rel/kubeadm', data: kubeadm},
          {path: 'rel/tool-1.1', data: tool11},
        ],
      ),
    )
    const out = join(dir, 'v3-delta')
    await cli([
      'build',
      '--no-importer',
      join(dir, 'v3.yaml'),
      '--store',
      store,
      '--since',
      join(dir, 'v2-delta'),
      '--out',
      out,
      '--quiet',
    ])
    expect(await archivedBlobs(out)).toEqual(digestsOf(img.tool3).sort())
    expect(await archivedFiles(out)).toEqual([])
    await cli(['verify', out, '--base', join(dir, 'v2-delta'), '--base', join(dir, 'v1')])
    const r = await runCli(['verify', out, '--base', join(dir, 'v2-delta')])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(base.digest)
  })
})

describe('importing a delta, and inventories', () => {
  let dst: RegistryServer
  let s3: S3Server
  let root: string
  const creds = () => ['--access-key', s3.accessKey, '--secret-key', s3.secretKey, '--region', s3.region]
  /** v1 into the registry, the web root and the bucket (an import skips what is already there). */
  const importV1 = async () => {
    await cli(['import', 'registry', join(dir, 'v1'), '--registry', dst.host, '--quiet'])
    await cli(['import', 'nginx', join(dir, 'v1'), '--root', root, '--quiet'])
    await cli([
      'import',
      's3',
      join(dir, 'v1'),
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'seed',
      '--prefix',
      'k8s',
      '--create-bucket',
      ...creds(),
      '--quiet',
    ])
  }

  beforeAll(async () => {
    dst = await startRegistry()
    s3 = await startRgw()
    root = join(dir, 'www')
  }, 240_000)

  afterAll(async () => {
    await dst?.stop()
    await s3?.stop()
  })

  it('into an empty registry, root and bucket: refused, nothing written, what is missing named with its bytes', async () => {
    const delta = join(dir, 'v2-delta')
    const before = await snapshot(dst.dataDir)
    const reg = await runCli(['import', 'registry', delta, '--registry', dst.host])
    expect(reg.code, reg.stderr).toBe(1)
    expect(reg.stderr).toContain(base.digest)
    // same:1.0, unchanged, is left out whole: its (platform-filtered) index is named, in its target repository.
    const sameDigest = (await v2Targets(dst.host)).find(([ref]) => ref.includes('/team/same:'))![1]
    // What it lacks for it is the whole image, as bundle.json sizes it, not its index alone.
    const sameSize = (
      JSON.parse(await readFile(join(delta, 'bundle.json'), 'utf8')) as {images: {ref: string; size: number}[]}
    ).images.find((i) => i.ref === `${src.host}/team/same:1.0`)!.size
    expect(reg.stderr).toContain(
      `${sameDigest} (manifest and everything it points to) of ${src.host}/team/same:1.0 in ${dst.host}/team/same: ${formatBytes(sameSize)} (${sameSize} bytes)`,
    )
    const lacks = /lacks \d+ items?, [\d.]+ \w+ \((\d+) bytes\)/.exec(reg.stderr)
    expect(lacks).not.toBeNull()
    expect(Number(lacks![1])).toBeGreaterThanOrEqual(sameSize)
    expect(await snapshot(dst.dataDir)).toEqual(before)

    const r = await runCli(['import', 'nginx', delta, '--root', join(dir, 'empty-root')])
    expect(r.code, r.stderr).toBe(1)
    expect(r.stderr).toContain(`${web.host}/rel/kubeadm (sha256 ${sha(kubeadm)}): 58.6 KiB (60000 bytes)`)
    await expect(stat(join(dir, 'empty-root'))).rejects.toThrow()

    const b = await runCli([
      'import',
      's3',
      delta,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'empty',
      '--create-bucket',
      ...creds(),
    ])
    expect(b.code, b.stderr).toBe(1)
    expect(b.stderr).toContain(`${web.host}/rel/kubeadm`)
    await expect(s3.client().send(new HeadBucketCommand({Bucket: 'empty'}))).rejects.toThrow()
  })

  it('inventories of targets holding v1 write nothing, and bundle --since them gives the archives --since v1 gives', async () => {
    await importV1()

    const storage = await snapshot(dst.dataDir)
    const files = await snapshot(root)
    const lock = join(dir, 'v2-full', 'bundle.json')
    const regOut = JSON.parse(
      await cli([
        'inventory',
        'registry',
        '--registry',
        dst.host,
        '--lock',
        lock,
        '--out',
        join(dir, 'have-registry.json'),
        '--json',
      ]),
    )
    const ngxOut = JSON.parse(
      await cli([
        'inventory',
        'nginx',
        '--root',
        root,
        '--lock',
        join(dir, 'v1'),
        '--out',
        join(dir, 'have-nginx.json'),
        '--json',
      ]),
    )
    const s3Out = JSON.parse(
      await cli([
        'inventory',
        's3',
        '--endpoint',
        s3.endpoint,
        '--bucket',
        'seed',
        '--prefix',
        'k8s',
        ...creds(),
        '--lock',
        lock,
        '--out',
        join(dir, 'have-s3.json'),
        '--json',
      ]),
    )
    expect(await snapshot(dst.dataDir)).toEqual(storage)
    expect(await snapshot(root)).toEqual(files)
    // v2's same:1.0 is held whole; app:2.0 and tool:2.0 are not, but app's base layer is.
    expect(regOut.counts).toMatchObject({images: 1, imagesInLock: 3})
    const have = JSON.parse(await readFile(join(dir, 'have-registry.json'), 'utf8'))
    expect(have.blobs.map((b: {digest: string}) => b.digest)).toContain(base.digest)
    expect(have.blobs.map((b: {digest: string}) => b.digest)).not.toContain(img.app2.digest)
    expect(ngxOut.counts).toMatchObject({files: 2, filesInLock: 2})
    expect(s3Out.counts).toMatchObject({files: 1, filesInLock: 2})

    const viaInventory = join(dir, 'v2-via-inventory')
    await cli([
      'bundle',
      '--no-importer',
      '--store',
      store,
      '--manifest',
      join(dir, 'v2.yaml'),
      '--since',
      join(dir, 'have-registry.json'),
      '--since',
      join(dir, 'have-nginx.json'),
      '--out',
      viaInventory,
      '--quiet',
    ])
    for (const f of ['offline-images.tar', 'offline-files.tar.gz', 'component-tools.tar.gz']) {
      expect(sha(await readFile(join(viaInventory, f))), f).toBe(sha(await readFile(join(dir, 'v2-delta', f))))
    }
  })

  it('imported after v1, the delta completes v2: every image reads back at its digest, every file with its sha256', async () => {
    const delta = join(dir, 'v2-delta')
    // v1 first (again when the test above ran: an import skips what is there).
    await importV1()
    const pushed = JSON.parse(await cli(['import', 'registry', delta, '--registry', dst.host, '--json']))
    expect(pushed.items).toHaveLength(3)
    for (const [ref, digest] of await v2Targets(dst.host)) {
      const {stdout} = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`], {
        encoding: 'buffer',
        maxBuffer: 16 << 20,
      })
      expect(`sha256:${sha(stdout)}`, ref).toBe(digest)
      // The whole image is there: skopeo copies it out of the registry, every blob checked.
      await run('skopeo', [
        'copy',
        '--src-tls-verify=false',
        '--all',
        `docker://${ref}`,
        `oci:${join(dir, 'readback')}:x`,
      ])
    }

    // It says that it checked the base's files on disk, on stdout and in --json.
    const ngx = await cli(['import', 'nginx', delta, '--root', root, '--quiet'])
    expect(ngx).toContain(`checked 1 file (58.6 KiB) of base delta-test 1.0.0 under ${root}: all there\n`)
    const again = JSON.parse(await cli(['import', 'nginx', delta, '--root', root, '--json'])) as {baseChecked: unknown}
    expect(again.baseChecked).toEqual({bases: 'delta-test 1.0.0', files: 1, bytes: kubeadm.length})
    for (const [p, data] of [
      ['rel/kubeadm', kubeadm],
      ['rel/tool-1.1', tool11],
    ] as const) {
      expect(sha(await readFile(join(root, web.host, p)))).toBe(sha(data))
    }

    const s3Out = await cli([
      'import',
      's3',
      delta,
      '--endpoint',
      s3.endpoint,
      '--bucket',
      'seed',
      '--prefix',
      'k8s',
      ...creds(),
      '--quiet',
    ])
    expect(s3Out).toContain('checked 1 file (58.6 KiB) of base delta-test 1.0.0 in seed/k8s: all there\n')
    const {GetObjectCommand} = await import('@aws-sdk/client-s3')
    for (const [p, data] of [
      ['rel/kubeadm', kubeadm],
      ['rel/tool-1.1', tool11],
    ] as const) {
      const got = await s3.client().send(new GetObjectCommand({Bucket: 'seed', Key: `k8s/${web.host}/${p}`}))
      const body = Buffer.from(await got.Body!.transformToByteArray())
      expect(sha(body)).toBe(sha(data))
      expect(got.Metadata?.sha256).toBe(sha(data))
    }
  })
})
