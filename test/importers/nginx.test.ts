import {lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile} from 'node:fs/promises'
import {dirname, join} from 'node:path'
import {gunzipSync, gzipSync} from 'node:zlib'

import {describe, expect, it} from 'vitest'

import {verifyBundle} from '../../src/lib/bundle/format/verify.js'
import {importNginx} from '../../src/lib/importers/nginx.js'
import {tempStem} from '../../src/lib/store/atomic.js'
import {RecordingProgress} from '../../src/lib/ui/progress.js'
import {
  fileData,
  type FixtureFile,
  hostileArchives,
  makeBundle,
  makeRawBundle,
  sha256Hex,
  tarBytes,
  tarHeader,
} from '../helpers/bundle-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

const FILES: FixtureFile[] = [
  {path: '127.0.0.1:8081/release/v1.29.0/bin/linux/amd64/kubeadm', data: fileData(3_000_000), executable: true},
  {path: '127.0.0.1:8081/release/v1.29.0/bin/linux/amd64/kubeadm.sha256', data: Buffer.from('abc\n')},
  {path: 'get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz', data: fileData(500_000)},
  {path: 'example.com/tools/nerdctl.tar.gz', data: fileData(100_000), kind: 'package'},
  {path: 'charts/nginx-15.1.0.tgz', data: fileData(20_000), kind: 'chart'},
]

/** Every regular file under dir, relative, for "nothing else was written" checks. */
async function tree(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, {recursive: true, withFileTypes: true})) {
    if (!e.isDirectory()) out.push(join(e.parentPath, e.name).slice(dir.length + 1))
  }
  return out.sort()
}

describe('importNginx', () => {
  it('unpacks every file verified, keeps exec bits, then skips them all on a second run', async () => {
    const work = await makeTempDir('nginx-import-')
    const b = await makeBundle(join(work, 'bundle'), FILES)
    const root = join(work, 'www')
    await mkdir(join(root, 'get.helm.sh'), {recursive: true})
    await writeFile(join(root, 'index.html'), 'mine')
    await writeFile(join(root, 'get.helm.sh', 'other.txt'), 'mine too')

    const first = await importNginx(b.dir, {root})
    expect(first.written).toBe(FILES.length)
    expect(first.files.map((f) => f.path)).toEqual(FILES.map((f) => f.path))
    for (const f of FILES) {
      const p = join(root, f.path)
      expect(sha256Hex(await readFile(p))).toBe(sha256Hex(f.data))
      expect((await stat(p)).mode & 0o777).toBe(f.executable ? 0o755 : 0o644)
      expect((await stat(dirname(p))).mode & 0o777).toBe(0o755)
    }
    expect(await readFile(join(root, 'index.html'), 'utf8')).toBe('mine')
    expect(await tree(root)).toEqual([...FILES.map((f) => f.path), 'get.helm.sh/other.txt', 'index.html'].sort())

    const before = await stat(join(root, FILES[0].path))
    const second = await importNginx(b.dir, {root})
    expect(second.written).toBe(0)
    expect(second.skipped).toBe(FILES.length)
    expect((await stat(join(root, FILES[0].path))).mtimeMs).toBe(before.mtimeMs)
    expect((await stat(join(root, FILES[0].path))).ino).toBe(before.ino)
  })

  it('writes a file that is both a binary and a package (one content) once, as the binary, and reports it once', async () => {
    const work = await makeTempDir('nginx-import-')
    const shared: FixtureFile = {path: 'example.com/tools/both', data: fileData(200_000), executable: true}
    const b = await makeBundle(join(work, 'bundle'), [
      shared,
      {...shared, executable: false, kind: 'package'},
      FILES[1],
    ])
    const root = join(work, 'www')
    const r = await importNginx(b.dir, {root})
    expect(r.files.map((f) => [f.path, f.action])).toEqual([
      [shared.path, 'written'],
      [FILES[1].path, 'written'],
    ])
    expect(r.written).toBe(2)
    expect(r.bytesWritten).toBe(shared.data.length + FILES[1].data.length)
    expect(sha256Hex(await readFile(join(root, shared.path)))).toBe(sha256Hex(shared.data))
    expect((await stat(join(root, shared.path))).mode & 0o777).toBe(0o755)
    expect(await tree(root)).toEqual([shared.path, FILES[1].path].sort())
  })

  it('rewrites a changed file and clears temporary files a killed run left', async () => {
    const work = await makeTempDir('nginx-import-')
    const b = await makeBundle(join(work, 'bundle'), FILES)
    const root = join(work, 'www')
    await importNginx(b.dir, {root})
    const target = join(root, FILES[2].path)
    await writeFile(target, 'tampered')
    // What a SIGKILLed import leaves: a temp name of a dead process beside a bundle file; and a user's file alike in shape.
    const stale = join(dirname(target), `.${FILES[2].path.split('/').pop()}.airlock-999999-0123abcd.tmp`)
    const foreign = join(dirname(target), '.unrelated.airlock-999999-0123abcd.tmp')
    await writeFile(stale, 'half')
    await writeFile(foreign, 'not ours')
    const r = await importNginx(b.dir, {root})
    expect(r.files.filter((f) => f.action === 'written').map((f) => f.path)).toEqual([FILES[2].path])
    expect(sha256Hex(await readFile(target))).toBe(sha256Hex(FILES[2].data))
    await expect(lstat(stale)).rejects.toThrow(/ENOENT/)
    expect(await readFile(foreign, 'utf8')).toBe('not ours')
  })

  it('imports names up to NAME_MAX (their temporary names shortened) and clears the temporary files a killed run left of them', async () => {
    const work = await makeTempDir('nginx-long-')
    const long: FixtureFile[] = [
      {path: `h.example/d/${'n'.repeat(255)}`, data: Buffer.from('longest ascii\n')},
      {path: `h.example/d/${'é'.repeat(127)}`, data: Buffer.from('254 bytes of two-byte characters\n')},
      {path: `h.example/d/${'n'.repeat(254)}`, data: Buffer.from('same first bytes\n')},
    ]
    const b = await makeBundle(join(work, 'bundle'), long)
    const root = join(work, 'www')
    await mkdir(join(root, 'h.example', 'd'), {recursive: true})
    const stale = join(root, 'h.example', 'd', `.${tempStem('n'.repeat(255))}.airlock-999999-0123abcd.tmp`)
    await writeFile(stale, 'half')
    const r = await importNginx(b.dir, {root})
    expect(r.written).toBe(long.length)
    for (const f of long)
      expect(sha256Hex(await readFile(join(root, f.path))), f.path.slice(0, 20)).toBe(sha256Hex(f.data))
    await expect(lstat(stale)).rejects.toThrow(/ENOENT/)
  })

  it('reads an archive split into numbered parts as one stream', async () => {
    const work = await makeTempDir('nginx-import-')
    const b = await makeBundle(join(work, 'bundle'), FILES)
    const name = 'offline-files.tar.gz'
    const whole = await readFile(join(b.dir, name))
    const cut = Math.floor(whole.length / 3)
    await writeFile(join(b.dir, `${name}.000`), whole.subarray(0, cut))
    await writeFile(join(b.dir, `${name}.001`), whole.subarray(cut))
    await rm(join(b.dir, name))
    const sums = (await readFile(join(b.dir, 'SHA256SUMS'), 'utf8'))
      .split('\n')
      .filter((l) => l && !l.endsWith(`  ${name}`))
    sums.push(`${sha256Hex(whole.subarray(0, cut))}  ${name}.000`, `${sha256Hex(whole.subarray(cut))}  ${name}.001`)
    await writeFile(join(b.dir, 'SHA256SUMS'), `${sums.join('\n')}\n`)
    const r = await importNginx(b.dir, {root: join(work, 'www')})
    expect(r.written).toBe(FILES.length)
    for (const f of FILES) expect(sha256Hex(await readFile(join(work, 'www', f.path)))).toBe(sha256Hex(f.data))
  })

  it('never writes through a symbolic link inside the root', async () => {
    const work = await makeTempDir('nginx-import-')
    const b = await makeBundle(join(work, 'bundle'), FILES)
    const root = join(work, 'www')
    const outside = join(work, 'outside')
    await mkdir(root, {recursive: true})
    await mkdir(outside)
    await symlink(outside, join(root, 'get.helm.sh'))
    await expect(importNginx(b.dir, {root})).rejects.toThrow(/symbolic link/)
    expect(await readdir(outside)).toEqual([])
  })

  it('refuses a bundle that fails verification before writing anything', async () => {
    const work = await makeTempDir('nginx-import-')
    const b = await makeBundle(join(work, 'bundle'), FILES)
    const archive = join(b.dir, 'offline-files.tar.gz')
    const bytes = await readFile(archive)
    bytes[bytes.length >> 1] ^= 0x01
    await writeFile(archive, bytes)
    const root = join(work, 'www')
    await expect(importNginx(b.dir, {root})).rejects.toMatchObject({kind: 'bundle', exitCode: 2})
    await expect(lstat(root)).rejects.toThrow(/ENOENT/)
  })

  it.each(hostileArchives().map((h) => [h.name, h] as const))('refuses a hostile bundle: %s', async (_name, h) => {
    const work = await makeTempDir('nginx-hostile-')
    const b = await makeRawBundle(join(work, 'bundle'), h.listed, h.tgz())
    const root = join(work, 'deep', 'www')
    // verifyBundle refuses most of them before anything is written; the entry checks catch the rest
    // (e.g. a bomb after the end marker). Either way a bundle error naming the reason.
    const err = (await importNginx(b.dir, {root}).catch((e: unknown) => e)) as {
      kind: string
      exitCode: number
      message: string
      details: string[]
    }
    expect(err).toMatchObject({kind: 'bundle', exitCode: 2})
    expect([err.message, ...err.details].join('\n')).toMatch(h.verifyWhy ?? h.why)
    // Nothing outside the root: the work folder holds only the bundle and the root's parents.
    expect((await tree(work)).filter((p) => !p.startsWith('bundle/') && !p.startsWith('deep/www/'))).toEqual([])
    // Nothing inside either: files are staged and published only once everything passed, and the
    // folders this run made are taken back.
    await expect(lstat(join(work, 'deep'))).rejects.toThrow(/ENOENT/)
    await expect(lstat('/tmp/airlock-escaped.txt')).rejects.toThrow(/ENOENT/)
  })
})

describe('importNginx, a refused bundle', () => {
  it('leaves the root untouched every time, though the other archive was still being staged', async () => {
    const work = await makeTempDir('nginx-refused-')
    const dir = join(work, 'bundle')
    // Many small files in component-tools.tar.gz; in offline-files.tar.gz a pax header far over
    // the limit, refused at once while the other archive is mid-way.
    const small = Array.from({length: 300}, (_, i): FixtureFile => ({
      path: `example.com/many/d${i % 30}/f${i}.bin`,
      data: fileData(2_000 + i),
      kind: 'package',
    }))
    const binaries = Array.from({length: 60}, (_, i): FixtureFile => ({
      path: `dl.example.com/b${i % 6}/f${i}.bin`,
      data: fileData(20_000 + i),
    }))
    const b = await makeBundle(dir, [...binaries, ...small])
    // The binaries first, so that the refusal comes while both archives are being staged.
    const good = tarBytes([
      {name: 'offline-files/', type: '5', mode: 0o755},
      ...binaries.map((f) => ({name: `offline-files/${f.path}`, data: f.data})),
    ])
    const paxBomb = Buffer.concat([
      good.subarray(0, good.length - 1024),
      tarHeader('PaxHeader', 'x', 128 * 1024 * 1024),
      Buffer.alloc(4096),
    ])
    await writeFile(join(dir, 'offline-files.tar.gz'), gzipSync(paxBomb))
    const sums = (await readFile(join(dir, 'SHA256SUMS'), 'utf8')).replace(
      /^[0-9a-f]{64}(?=  offline-files\.tar\.gz$)/m,
      sha256Hex(await readFile(join(dir, 'offline-files.tar.gz'))),
    )
    await writeFile(join(dir, 'SHA256SUMS'), sums)
    expect(b.lock.files).toHaveLength(360)

    const root = join(work, 'www')
    await mkdir(root)
    await writeFile(join(root, 'index.html'), 'kept\n')
    for (let i = 0; i < 25; i++) {
      const err = await importNginx(dir, {root}).catch((e: unknown) => e)
      expect(err).toMatchObject({exitCode: 2})
      expect(await readdir(root, {recursive: true})).toEqual(['index.html'])
    }
  }, 120_000)

  it('refuses a bundle.json with a file at a path it also has a folder at, in either order, and gives nothing a final name', async () => {
    const work = await makeTempDir('nginx-file-folder-')
    const first: FixtureFile = {path: 'h.example/ok.bin', data: Buffer.from('fine\n')}
    const file: FixtureFile = {path: 'h.example/x/a', data: Buffer.from('a file\n')}
    const under: FixtureFile = {path: 'h.example/x/a/b', data: Buffer.from('under it\n')}
    for (const [name, order] of [
      ['file first', [first, file, under]],
      ['folder first', [first, under, file]],
    ] as const) {
      const dir = join(work, name.replace(' ', '-'))
      const tgz = gzipSync(
        tarBytes([
          {name: 'offline-files/', type: '5', mode: 0o755},
          ...order.map((f) => ({name: `offline-files/${f.path}`, data: f.data})),
        ]),
      )
      await makeRawBundle(dir, [...order], tgz)
      const root = join(work, `www-${name.replace(' ', '-')}`)
      const err = await importNginx(dir, {root}).catch((e: unknown) => e)
      expect(err, name).toBeInstanceOf(Error)
      // bundle.json itself is refused, before the root is touched (RootSink refuses such a pair too: root-sink.test.ts).
      expect(err, name).toMatchObject({
        exitCode: 2,
        message: expect.stringMatching(/bundle\.json is malformed \(1 problem\)$/),
      })
      expect((err as {details?: string[]}).details, name).toEqual([
        expect.stringMatching(
          /^files\[\d\]\.path: h\.example\/x\/a is a file, and a folder for files\[\d\] \(h\.example\/x\/a\/b\)$/,
        ),
      ])
      const left = await readdir(root, {recursive: true, withFileTypes: true}).catch(() => [])
      expect(
        left.filter((e) => !e.isDirectory()).map((e) => e.name),
        name,
      ).toEqual([])
    }
  })
})

describe('importNginx verifies what it imports', () => {
  it('does not read offline-images.tar: a damaged one fails verify but not import nginx', async () => {
    const work = await makeTempDir('nginx-scope-')
    const b = await makeBundle(join(work, 'bundle'), FILES)
    await writeFile(join(b.dir, 'offline-images.tar'), 'not a tar at all')
    expect((await verifyBundle(b.dir)).problems.some((p) => p.startsWith('offline-images.tar'))).toBe(true)
    const progress = new RecordingProgress()
    const r = await importNginx(b.dir, {root: join(work, 'www'), progress})
    expect(r.written).toBe(FILES.length)
    expect(progress.events.filter((e) => e.includes('offline-images.tar'))).toEqual([])
    expect(progress.events.some((e) => e.startsWith('start offline-files.tar.gz:'))).toBe(true)
  })

  it('refuses an archive whose bytes SHA256SUMS does not list, though every entry in it is right: nothing written', async () => {
    const work = await makeTempDir('nginx-sums-')
    const b = await makeBundle(join(work, 'bundle'), FILES)
    const archive = join(b.dir, 'offline-files.tar.gz')
    const before = await readFile(archive)
    // Re-compressed: the same tar, so each entry's size and sha256 still match bundle.json.
    const after = gzipSync(gunzipSync(before), {level: 1})
    expect(after).not.toEqual(before)
    await writeFile(archive, after)
    const root = join(work, 'www')
    await mkdir(root)
    await writeFile(join(root, 'index.html'), 'kept\n')
    const err = (await importNginx(b.dir, {root}).catch((e: unknown) => e)) as {exitCode: number; details: string[]}
    expect(err).toMatchObject({kind: 'bundle', exitCode: 2})
    expect(err.details).toEqual([
      `offline-files.tar.gz: sha256 ${sha256Hex(after)} does not match SHA256SUMS (${sha256Hex(before)})`,
    ])
    expect(await tree(root)).toEqual(['index.html'])
  })

  it('refuses a bundle.json that SHA256SUMS does not list, though it reads the same: nothing written', async () => {
    const work = await makeTempDir('nginx-sums-')
    const b = await makeBundle(join(work, 'bundle'), FILES)
    const lockFile = join(b.dir, 'bundle.json')
    await writeFile(lockFile, `${(await readFile(lockFile, 'utf8')).trimEnd()}\n\n`)
    const root = join(work, 'www')
    const err = (await importNginx(b.dir, {root}).catch((e: unknown) => e)) as {exitCode: number; details: string[]}
    expect(err).toMatchObject({kind: 'bundle', exitCode: 2})
    expect(err.details).toEqual([expect.stringMatching(/^bundle\.json: sha256 [0-9a-f]{64} does not match SHA256SUMS/)])
    await expect(lstat(root)).rejects.toThrow(/ENOENT/)
  })
})
