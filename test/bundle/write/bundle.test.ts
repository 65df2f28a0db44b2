import {execFile} from 'node:child_process'
import {createHash} from 'node:crypto'
import {appendFile, readdir, readFile, rm, stat, utimes, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {beforeAll, describe, expect, it} from 'vitest'

import {verifyBundle} from '../../../src/lib/bundle/format/verify.js'
import {writeBundle} from '../../../src/lib/bundle/write/bundle.js'
import {FailureError, IntegrityError} from '../../../src/lib/errors.js'
import {parseManifest} from '../../../src/lib/manifest/load.js'
import {makeStoreFixture, type StoreFixture} from '../../helpers/store-fixture.js'
import {makeTempDir} from '../../helpers/tmp.js'

const run = promisify(execFile)
const sh = async (cmd: string, cwd: string) => (await run('sh', ['-c', cmd], {cwd, maxBuffer: 64 << 20})).stdout
const sha = async (file: string) =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex')
const FIVE = ['SHA256SUMS', 'bundle.json', 'component-tools.tar.gz', 'offline-files.tar.gz', 'offline-images.tar']

async function tree(root: string, rel = ''): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(join(root, rel), {withFileTypes: true})) {
    const p = rel ? `${rel}/${e.name}` : e.name
    if (e.isDirectory()) out.push(...(await tree(root, p)))
    else out.push(p)
  }
  return out.sort()
}

describe('bundle from a store', () => {
  let store: StoreFixture
  let out: string

  beforeAll(async () => {
    store = await makeStoreFixture()
    out = await makeTempDir('airlock-bundle-')
    await writeBundle({store: store.root, out})
  })

  it('writes the five files and nothing else; sha256sum -c passes', async () => {
    expect((await readdir(out)).sort()).toEqual(FIVE)
    const check = await sh('sha256sum -c SHA256SUMS', out)
    expect(check.trim().split('\n').sort()).toEqual(
      FIVE.filter((f) => f !== 'SHA256SUMS')
        .map((f) => `${f}: OK`)
        .sort(),
    )
  })

  it('tar lists one top folder with every file at its mirrored path', async () => {
    const files = (await sh('tar -tzf offline-files.tar.gz', out)).trim().split('\n')
    expect(files.every((p) => p.startsWith('offline-files/'))).toBe(true)
    expect(files.filter((p) => !p.endsWith('/')).sort()).toEqual(
      store.files
        .filter((f) => f.kind === 'binary')
        .map((f) => `offline-files/${f.path}`)
        .sort(),
    )
    const pkgs = (await sh('tar -tzf component-tools.tar.gz', out))
      .trim()
      .split('\n')
      .filter((p) => !p.endsWith('/'))
    expect(pkgs.sort()).toEqual(
      [
        'component-tools/charts/index.yaml',
        ...store.files.filter((f) => f.kind !== 'binary').map((f) => `component-tools/${f.path}`),
      ].sort(),
    )
  })

  it('tar -xzf --strip-components=1 gives the store files byte for byte, executables executable', async () => {
    for (const [archive, folder] of [
      ['offline-files.tar.gz', 'files'],
      ['component-tools.tar.gz', 'packages'],
    ]) {
      const dest = await makeTempDir()
      await sh(`tar -xzf ${join(out, archive)} --strip-components=1 -C ${dest}`, out)
      expect(await tree(dest)).toEqual(await tree(join(store.root, folder)))
      for (const f of await tree(dest)) expect(await sha(join(dest, f))).toBe(await sha(join(store.root, folder, f)))
    }
    const dest = await makeTempDir()
    await sh(`tar -xzf ${join(out, 'offline-files.tar.gz')} --strip-components=1 -C ${dest}`, out)
    for (const f of store.files.filter((x) => x.kind === 'binary')) {
      expect(((await stat(join(dest, f.path))).mode & 0o111) !== 0).toBe(f.executable)
    }
  })

  it('offline-images.tar is the layout: oci-layout, index.json with every ref, every blob', async () => {
    const names = (await sh('tar -tf offline-images.tar', out)).trim().split('\n')
    expect(names.slice(0, 4)).toEqual(['oci-layout', 'index.json', 'blobs/', 'blobs/sha256/'])
    expect(names.slice(4).sort()).toEqual(store.blobs.map((d) => `blobs/sha256/${d.slice(7)}`))
    const index = JSON.parse(await sh('tar -xOf offline-images.tar index.json', out))
    expect(
      index.manifests.map(
        (m: {annotations: Record<string, string>}) => m.annotations['org.opencontainers.image.ref.name'],
      ),
    ).toEqual(store.images.map((i) => i.ref).sort())
    const lock = JSON.parse(await readFile(join(out, 'bundle.json'), 'utf8'))
    expect(lock.images.map((i: {ref: string; digest: string}) => [i.ref, i.digest])).toEqual(
      store.images.map((i) => [i.ref, i.digest]).sort((a, b) => (a[0] < b[0] ? -1 : 1)),
    )
    expect(lock.files.find((f: {path: string}) => f.path === 'charts/index.yaml')).toMatchObject({
      kind: 'chart',
      size: expect.any(Number),
    })
    expect((await verifyBundle(out)).problems).toEqual([])
  })

  it('bundling twice gives byte-identical archives, whatever the store files mtimes', async () => {
    const again = await makeTempDir()
    const later = new Date('2030-01-01T00:00:00Z')
    for (const f of await tree(join(store.root, 'files'))) await utimes(join(store.root, 'files', f), later, later)
    await writeBundle({store: store.root, out: again, concurrency: 1})
    for (const f of FIVE) expect(await sha(join(again, f)), f).toBe(await sha(join(out, f)))
  })

  it('takes mtimes from SOURCE_DATE_EPOCH; a gzip header carries no name and no time', async () => {
    const dir = await makeTempDir()
    await writeBundle({store: store.root, out: dir, mtime: 1_700_000_000})
    expect((await sh('TZ=UTC tar --full-time -tvzf offline-files.tar.gz | head -1', dir)).trim()).toMatch(
      /2023-11-14 22:13:20 offline-files\/$/,
    )
    const gz = await readFile(join(out, 'offline-files.tar.gz'))
    expect([...gz.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3])
  })

  it('--split writes numbered parts that cat rejoins into the very same archives, listed in SHA256SUMS', async () => {
    const dir = await makeTempDir()
    await writeBundle({store: store.root, out: dir, split: 20_000})
    const names = (await readdir(dir)).sort()
    expect(names.filter((n) => n.startsWith('offline-images.tar.')).length).toBeGreaterThan(2)
    expect(names).toContain('component-tools.tar.gz.000')
    expect(names).not.toContain('offline-images.tar')
    await sh('sha256sum -c SHA256SUMS', dir)
    expect((await readFile(join(dir, 'SHA256SUMS'), 'utf8')).split('\n').filter(Boolean).length).toBe(names.length - 1)
    for (const n of ['offline-files.tar.gz', 'component-tools.tar.gz', 'offline-images.tar']) {
      await sh(`cat ${n}.* > ${join(dir, '..', `${n}.joined`)}`, dir)
      expect(await sha(join(dir, '..', `${n}.joined`)), n).toBe(await sha(join(out, n)))
      await rm(join(dir, '..', `${n}.joined`))
    }
    expect(await verifyBundle(dir)).toMatchObject({ok: true, problems: []})
    // Re-bundling whole into the same folder leaves no stale part behind.
    await writeBundle({store: store.root, out: dir})
    expect((await readdir(dir)).sort()).toEqual(FIVE)
  })
})

describe('bundle refuses a store that differs from its records', () => {
  it('a changed file is an IntegrityError and nothing gets a final name', async () => {
    const store = await makeStoreFixture()
    const out = await makeTempDir()
    const f = store.files.find((x) => x.kind === 'package')!
    const p = join(store.root, 'packages', f.path)
    const data = await readFile(p)
    data[10] ^= 0xff
    await writeFile(p, data)
    const err = await writeBundle({store: store.root, out}).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toContain(f.path)
    expect(await readdir(out)).toEqual([])
  })

  it('a changed blob (same size) is an IntegrityError naming it, and no archive gets a final name', async () => {
    const store = await makeStoreFixture()
    const out = await makeTempDir()
    const layer = store.images[0].blobs[1]
    const p = join(store.root, 'images', 'blobs', 'sha256', layer.slice(7))
    const data = await readFile(p)
    data[100] ^= 0xff
    await writeFile(p, data)
    const err = await writeBundle({store: store.root, out}).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as Error).message).toContain(layer)
    expect(await readdir(out)).toEqual([])
  })

  it('a changed manifest (same size) is an IntegrityError naming it and its image, and no archive gets a final name', async () => {
    const store = await makeStoreFixture()
    const out = await makeTempDir()
    const image = store.images[0]
    const p = join(store.root, 'images', 'blobs', 'sha256', image.digest.slice(7))
    const data = await readFile(p)
    // Still JSON of the same size, pointing elsewhere: one hex digit of the first digest in it changed.
    const at = data.indexOf('sha256:') + 7
    data[at] = data[at] === 0x30 ? 0x31 : 0x30
    await writeFile(p, data)
    const err = await writeBundle({store: store.root, out}).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(IntegrityError)
    expect((err as IntegrityError).what).toContain(`blob ${image.digest} of ${image.ref}`)
    expect(await readdir(out)).toEqual([])
  })

  it('missing and resized files and a missing blob are all listed before anything is written', async () => {
    const store = await makeStoreFixture()
    const out = await makeTempDir()
    const [a, b] = store.files.filter((x) => x.kind === 'binary')
    await rm(join(store.root, 'files', a.path))
    await appendFile(join(store.root, 'files', b.path), 'x')
    const layer = store.images[0].blobs[0]
    await rm(join(store.root, 'images', 'blobs', 'sha256', layer.slice(7)))
    const err = (await writeBundle({store: store.root, out}).catch((e: unknown) => e)) as FailureError
    expect(err).toBeInstanceOf(FailureError)
    expect(err.details).toHaveLength(3)
    expect(err.details.join('\n')).toContain(`${a.path}: missing from the store`)
    expect(err.details.join('\n')).toContain(`${b.path}: ${b.size + 1} bytes in the store, recorded ${b.size}`)
    expect(err.details.join('\n')).toContain(`${layer.slice(7)}: blob missing from the store`)
    expect(await readdir(out)).toEqual([])
  })

  it('an image whose index.json digest differs from the record is refused', async () => {
    const store = await makeStoreFixture()
    const records = JSON.parse(await readFile(join(store.root, 'records.json'), 'utf8'))
    records.images[0].digest = `sha256:${'0'.repeat(64)}`
    await writeFile(join(store.root, 'records.json'), JSON.stringify(records))
    await expect(writeBundle({store: store.root, out: await makeTempDir()})).rejects.toThrow(
      /does not match its records/,
    )
  })

  it('no records.json is a usage error', async () => {
    await expect(writeBundle({store: await makeTempDir(), out: await makeTempDir()})).rejects.toMatchObject({
      kind: 'usage',
    })
  })
})

describe('an empty store', () => {
  it('still writes all five files, each archive valid and empty', async () => {
    const store = await makeStoreFixture({images: [], files: []})
    const out = await makeTempDir()
    await writeBundle({store: store.root, out})
    expect((await readdir(out)).sort()).toEqual(FIVE)
    expect((await sh('tar -tzf offline-files.tar.gz', out)).trim()).toBe('offline-files/')
    expect((await sh('tar -tf offline-images.tar', out)).trim().split('\n')).toEqual([
      'oci-layout',
      'index.json',
      'blobs/',
      'blobs/sha256/',
    ])
    expect(await verifyBundle(out)).toMatchObject({ok: true})
  })
})

describe('bundle narrowed to a manifest', () => {
  it('carries only the named files, and a chart index of its own charts', async () => {
    const store = await makeStoreFixture({
      images: [],
      files: [
        {kind: 'binary', path: 'dl.k8s.io/kubeadm', size: 1000},
        {kind: 'binary', path: 'dl.k8s.io/kubelet', size: 1000},
        {kind: 'chart', path: 'charts/alpha-1.0.0.tgz', size: 500},
        {kind: 'chart', path: 'charts/beta-2.0.0.tgz', size: 500},
      ],
    })
    const kubeadm = store.files.find((f) => f.path === 'dl.k8s.io/kubeadm')!
    const manifest = parseManifest(
      Buffer.from(
        [
          'apiVersion: airlock/v1',
          'kind: Manifest',
          'metadata: {name: narrow}',
          'spec:',
          '  binaries:',
          `    - {url: "https://dl.k8s.io/kubeadm", sha256: ${kubeadm.sha256}}`,
          '  packages:',
          '    - chart: {repo: "https://charts.example.com/stable", name: beta, version: 2.0.0}',
          '',
        ].join('\n'),
      ),
      join(store.root, 'narrow.yaml'),
    )
    const out = await makeTempDir('airlock-bundle-narrow-')
    const r = await writeBundle({store: store.root, out, manifest})
    expect(r).toMatchObject({name: 'narrow', images: 0, files: 3})
    expect((await sh('tar -tzf offline-files.tar.gz', out)).trim().split('\n')).toEqual([
      'offline-files/',
      'offline-files/dl.k8s.io/',
      'offline-files/dl.k8s.io/kubeadm',
    ])
    const index = await sh('tar -xzOf component-tools.tar.gz component-tools/charts/index.yaml', out)
    expect(index).toContain('beta-2.0.0.tgz')
    expect(index).not.toContain('alpha-1.0.0.tgz')
    expect((await verifyBundle(out)).ok).toBe(true)

    const missing = parseManifest(
      Buffer.from(
        'apiVersion: airlock/v1\nkind: Manifest\nmetadata: {name: more}\nspec:\n  images: [docker.io/library/nginx:1.25.3]\n',
      ),
      join(store.root, 'more.yaml'),
    )
    const err = await writeBundle({
      store: store.root,
      out: await makeTempDir('airlock-bundle-narrow-'),
      manifest: missing,
    }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(FailureError)
    expect((err as FailureError).details).toEqual(['image docker.io/library/nginx:1.25.3'])
  })
})
