import {execFile} from 'node:child_process'
import {cp, readFile, rm, truncate, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {beforeAll, describe, expect, it} from 'vitest'

import {verifyBundle} from '../../../src/lib/bundle/format/verify.js'
import {writeBundle} from '../../../src/lib/bundle/write/bundle.js'
import {BundleError} from '../../../src/lib/errors.js'
import {RecordingProgress} from '../../../src/lib/ui/progress.js'
import {hostileArchives, makeRawBundle} from '../../helpers/bundle-fixture.js'
import {makeStoreFixture, type StoreFixture} from '../../helpers/store-fixture.js'
import {makeTempDir} from '../../helpers/tmp.js'

const run = promisify(execFile)
const sh = async (cmd: string, cwd: string) => (await run('sh', ['-c', cmd], {cwd})).stdout

let store: StoreFixture
let good: string

beforeAll(async () => {
  store = await makeStoreFixture()
  good = await makeTempDir('airlock-good-')
  await writeBundle({store: store.root, out: good})
})

async function copyOfGood(): Promise<string> {
  const dir = await makeTempDir('airlock-bad-')
  await cp(good, dir, {recursive: true})
  return dir
}

/** Flip one byte of `file` at the first place `needle` occurs. */
async function flipAt(file: string, needle: Buffer): Promise<void> {
  const data = await readFile(file)
  const at = data.indexOf(needle)
  expect(at).toBeGreaterThan(0)
  data[at + 1] ^= 0x01
  await writeFile(file, data)
}

/** Re-sum the folder as a tamperer who knows sha256sum would, so only the deeper check can notice. */
const resum = (dir: string) =>
  sh('sha256sum bundle.json offline-files.tar.gz component-tools.tar.gz offline-images.tar > SHA256SUMS', dir)

describe('verify', () => {
  it('passes a good bundle', async () => {
    expect(await verifyBundle(good)).toMatchObject({ok: true, problems: []})
  })

  it('a flipped byte in a layer names the blob and the archive', async () => {
    const dir = await copyOfGood()
    const layer = store.images[0].blobs[1]
    const blob = await readFile(join(store.root, 'images', 'blobs', 'sha256', layer.slice(7)))
    await flipAt(join(dir, 'offline-images.tar'), blob.subarray(100, 140))
    const r = await verifyBundle(dir)
    expect(r.ok).toBe(false)
    // Corrupt, not missing: under the image that references it, with the expected and the actual digest.
    expect(r.problems).toEqual([
      expect.stringMatching(
        new RegExp(
          `^offline-images\\.tar: \\S+ .*layer \\d: blob ${layer} is corrupt: expected ${layer}, got sha256:[0-9a-f]{64}$`,
        ),
      ),
      expect.stringMatching(/^offline-images\.tar: sha256 [0-9a-f]{64} does not match SHA256SUMS/),
    ])
    expect(r.problems.join('\n')).not.toMatch(/missing/)
  })

  it('an archive is reported ok only when SHA256SUMS agrees too', async () => {
    const dir = await copyOfGood()
    // The gzip header's OS byte: gunzip ignores it, so only the archive's sha256 shows the change.
    const gz = await readFile(join(dir, 'offline-files.tar.gz'))
    gz[9] ^= 0x01
    await writeFile(join(dir, 'offline-files.tar.gz'), gz)
    const progress = new RecordingProgress()
    const r = await verifyBundle(dir, {progress})
    expect(r.problems).toEqual([
      expect.stringMatching(/^offline-files\.tar\.gz: sha256 [0-9a-f]{64} does not match SHA256SUMS/),
    ])
    expect(progress.events).toContain('fail verify offline-files.tar.gz 1 problem')
    expect(progress.events.filter((e) => e.startsWith('done verify offline-files'))).toEqual([])
    expect(progress.events).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^done verify component-tools\.tar\.gz /),
        expect.stringMatching(/^done verify offline-images\.tar /),
      ]),
    )
  })

  it('a flipped byte in a compressed archive or in bundle.json is named', async () => {
    const dir = await copyOfGood()
    const gz = await readFile(join(dir, 'offline-files.tar.gz'))
    gz[Math.floor(gz.length / 2)] ^= 0x10
    await writeFile(join(dir, 'offline-files.tar.gz'), gz)
    const lock = JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8'))
    const pkg = lock.files.find((f: {kind: string}) => f.kind === 'package')
    pkg.sha256 = pkg.sha256.replace(/^./, (c: string) => (c === '0' ? '1' : '0'))
    await writeFile(join(dir, 'bundle.json'), JSON.stringify(lock, null, 2))
    const r = await verifyBundle(dir)
    expect(r.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^offline-files\.tar\.gz: (corrupt or truncated gzip|.*sha256)/),
        expect.stringMatching(/^offline-files\.tar\.gz: sha256 .* does not match SHA256SUMS/),
        expect.stringMatching(
          new RegExp(
            `^component-tools\\.tar\\.gz: component-tools/${pkg.path}: sha256 [0-9a-f]{64}, bundle\\.json says ${pkg.sha256}`,
          ),
        ),
        expect.stringMatching(/^bundle\.json: sha256 .* does not match SHA256SUMS/),
      ]),
    )
  })

  it('a missing blob is named even when SHA256SUMS was rewritten to match', async () => {
    const dir = await copyOfGood()
    // The first platform's own layer (blobs[0] is the base layer every image shares).
    const layer = store.images[2].blobs[1]
    const x = await makeTempDir()
    await sh(
      `tar -xf ${join(dir, 'offline-images.tar')} -C ${x} && rm ${x}/blobs/sha256/${layer.slice(7)} && tar -cf ${join(dir, 'offline-images.tar')} -C ${x} .`,
      dir,
    )
    await resum(dir)
    const r = await verifyBundle(dir)
    expect(r.problems).toEqual([
      expect.stringMatching(
        new RegExp(
          `^offline-images\\.tar: quay\\.io/example/multi:1\\.0 > linux/amd64 sha256:[0-9a-f]{64} layer 1: blob ${layer} is missing$`,
        ),
      ),
    ])
  })

  it('an image whose index.json entry points at a config is named as not a manifest (configs are not kept in memory)', async () => {
    const dir = await copyOfGood()
    const x = await makeTempDir()
    await sh(`tar -xf offline-images.tar -C ${x}`, dir)
    const blob = async (digest: string) =>
      JSON.parse(await readFile(join(x, 'blobs', 'sha256', digest.slice(7)), 'utf8'))
    const index = JSON.parse(await readFile(join(x, 'index.json'), 'utf8'))
    const entry = index.manifests[0]
    let doc = await blob(entry.digest)
    if (doc.manifests) doc = await blob(doc.manifests[0].digest)
    const config = doc.config as {digest: string; size: number}
    const ref = entry.annotations['org.opencontainers.image.ref.name']
    const oldDigest = entry.digest
    Object.assign(entry, {digest: config.digest, size: config.size})
    await writeFile(join(x, 'index.json'), JSON.stringify(index))
    await sh(`tar -cf ${join(dir, 'offline-images.tar')} -C ${x} .`, dir)
    const lock = JSON.parse(await readFile(join(dir, 'bundle.json'), 'utf8'))
    for (const img of lock.images) if (img.digest === oldDigest) img.digest = config.digest
    await writeFile(join(dir, 'bundle.json'), JSON.stringify(lock, null, 2))
    await resum(dir)
    const r = await verifyBundle(dir)
    expect(r.problems).toContain(`offline-images.tar: ${ref}: ${config.digest} is not an image manifest or index`)
  })

  it('an extra file in a .tar.gz and an extra blob are named', async () => {
    const dir = await copyOfGood()
    const x = await makeTempDir()
    await sh(
      `tar -xzf offline-files.tar.gz -C ${x} && echo evil > ${x}/offline-files/evil.sh && tar -czf offline-files.tar.gz -C ${x} offline-files`,
      dir,
    )
    const y = await makeTempDir()
    await sh(
      `tar -xf offline-images.tar -C ${y} && echo -n extra > ${y}/blobs/sha256/$(echo -n extra | sha256sum | cut -c1-64) && tar -cf offline-images.tar -C ${y} .`,
      dir,
    )
    await resum(dir)
    const r = await verifyBundle(dir)
    expect(r.problems).toEqual([
      'offline-files.tar.gz: offline-files/evil.sh: extra file, not listed in bundle.json',
      expect.stringMatching(/^offline-images\.tar: blobs\/sha256\/[0-9a-f]{64}: extra blob, no image references it$/),
    ])
  })

  it('a file listed in bundle.json but not archived is named', async () => {
    const dir = await copyOfGood()
    const x = await makeTempDir()
    const bin = store.files.find((f) => f.kind === 'binary')!
    await sh(
      `tar -xzf offline-files.tar.gz -C ${x} && rm ${x}/offline-files/${bin.path} && tar -czf offline-files.tar.gz -C ${x} offline-files`,
      dir,
    )
    await resum(dir)
    expect((await verifyBundle(dir)).problems).toEqual([
      `offline-files.tar.gz: offline-files/${bin.path} is listed in bundle.json but not in the archive`,
    ])
  })

  it('truncated archives and a missing one are named', async () => {
    const dir = await copyOfGood()
    await truncate(join(dir, 'offline-images.tar'), 30_000)
    await truncate(join(dir, 'component-tools.tar.gz'), 5_000)
    await rm(join(dir, 'offline-files.tar.gz'))
    const r = await verifyBundle(dir)
    expect(r.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^offline-images\.tar: truncated archive/),
        expect.stringMatching(/^component-tools\.tar\.gz: corrupt or truncated gzip/),
        expect.stringMatching(/^offline-files\.tar\.gz: offline-files\.tar\.gz is missing/),
        'SHA256SUMS: lists offline-files.tar.gz, which is not in the bundle',
        expect.stringMatching(/^offline-images\.tar: sha256 .* does not match SHA256SUMS/),
      ]),
    )
  })

  it('SHA256SUMS must list every file, and only them', async () => {
    const dir = await copyOfGood()
    const sums = (await readFile(join(dir, 'SHA256SUMS'), 'utf8')).split('\n').filter((l) => !l.endsWith('bundle.json'))
    await writeFile(join(dir, 'SHA256SUMS'), `${sums.join('\n')}\n${'0'.repeat(64)}  ghost.tar\nrubbish\n`)
    expect((await verifyBundle(dir)).problems.sort()).toEqual(
      [
        'SHA256SUMS: lists ghost.tar, which is not in the bundle',
        expect.stringMatching(/^SHA256SUMS:\d+: not a/),
        'bundle.json: not listed in SHA256SUMS',
      ].sort(),
    )
  })

  it('reads split parts as one archive and names a damaged part', async () => {
    const dir = await makeTempDir()
    await writeBundle({store: store.root, out: dir, split: 25_000})
    expect(await verifyBundle(dir)).toMatchObject({ok: true})
    const part = join(dir, 'offline-images.tar.002')
    const data = await readFile(part)
    data[1000] ^= 0x01
    await writeFile(part, data)
    const r = await verifyBundle(dir)
    expect(r.problems).toEqual(
      expect.arrayContaining([expect.stringMatching(/^offline-images\.tar\.002: sha256 .* does not match SHA256SUMS/)]),
    )
  })

  it('a missing or malformed bundle.json is a BundleError, not a report', async () => {
    const dir = await copyOfGood()
    await writeFile(join(dir, 'bundle.json'), '{"apiVersion": "airlock/v1"}')
    await expect(verifyBundle(dir)).rejects.toBeInstanceOf(BundleError)
    await rm(join(dir, 'bundle.json'))
    await expect(verifyBundle(dir)).rejects.toThrow(/bundle\.json is missing/)
  })
})

describe('verifyBundle on hostile archives', () => {
  it.each(hostileArchives().map((h) => [h.name, h] as const))('reports %s as a problem line', async (_name, h) => {
    const b = await makeRawBundle(join(await makeTempDir('airlock-hostile-'), 'bundle'), h.listed, h.tgz())
    const r = await verifyBundle(b.dir)
    expect(r.ok).toBe(false)
    expect(r.problems.join('\n')).toMatch(h.verifyWhy ?? h.why)
  })

  it('caps what an archive may decompress to, as an import does', async () => {
    const bomb = hostileArchives().find((h) => h.name === 'gzip bomb')!
    const b = await makeRawBundle(join(await makeTempDir('airlock-bomb-'), 'bundle'), bomb.listed, bomb.tgz())
    const r = await verifyBundle(b.dir)
    expect(r.problems[0]).toMatch(
      /^offline-files\.tar\.gz: decompresses to more than the \d+ bytes bundle\.json accounts for/,
    )
  })
})
