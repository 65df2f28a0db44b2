import {cp, readFile, rm, writeFile} from 'node:fs/promises'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {writeBundle} from '../../src/lib/bundle/write/bundle.js'
import {runCli} from '../helpers/cli.js'
import {freePort} from '../helpers/ports.js'
import {makeStoreFixture} from '../helpers/store-fixture.js'
import {makeTempDir} from '../helpers/tmp.js'

// One condition, one exit code: an invalid bundle is exit 2 for verify and for
// every import, and each problem is reported under the archive it is about.

let good: string
let layer: Buffer

beforeAll(async () => {
  const store = await makeStoreFixture()
  layer = await readFile(join(store.root, 'images', 'blobs', 'sha256', store.images[0].blobs[1].slice(7)))
  good = await makeTempDir('airlock-invalid-good-')
  await writeBundle({store: store.root, out: good})
})

async function copyOfGood(): Promise<string> {
  const dir = await makeTempDir('airlock-invalid-')
  await cp(good, dir, {recursive: true})
  return dir
}

describe('an invalid bundle', () => {
  it('a missing archive: verify and import nginx both exit 2, and only its own line names it', async () => {
    const dir = await copyOfGood()
    await rm(join(dir, 'offline-files.tar.gz'))
    const v = await runCli(['verify', dir, '--json'])
    expect(v.code, v.stderr).toBe(2)
    const e = JSON.parse(v.stdout).error
    expect(e).toMatchObject({kind: 'bundle', exitCode: 2})
    expect(e.details).toEqual(
      expect.arrayContaining([expect.stringMatching(/^offline-files\.tar\.gz: offline-files\.tar\.gz is missing/)]),
    )

    const root = await makeTempDir('airlock-invalid-root-')
    const i = await runCli(['import', 'nginx', dir, '--root', root])
    expect(i.code, i.stderr).toBe(2)
    for (const line of i.stderr
      .split('\n')
      .filter((l) => l.startsWith('FAIL component-tools') || l.startsWith('ok   component-tools'))) {
      expect(line).not.toContain('offline-files.tar.gz')
    }
  })

  it('a flipped byte: verify exits 2, never says ok for that archive, and calls the blob corrupt', async () => {
    const dir = await copyOfGood()
    const gz = await readFile(join(dir, 'offline-files.tar.gz'))
    gz[9] ^= 0x01 // the gzip header's OS byte: only SHA256SUMS can tell
    await writeFile(join(dir, 'offline-files.tar.gz'), gz)
    const tar = await readFile(join(dir, 'offline-images.tar'))
    tar[tar.indexOf(layer.subarray(100, 140)) + 1] ^= 0xff // inside a layer
    await writeFile(join(dir, 'offline-images.tar'), tar)
    const v = await runCli(['verify', dir])
    expect(v.code, v.stderr).toBe(2)
    expect(v.stderr).not.toMatch(/^ok +verify offline-files\.tar\.gz/m)
    expect(v.stderr).not.toMatch(/^ok +verify offline-images\.tar/m)
    expect(v.stderr).toMatch(/^FAIL verify offline-files\.tar\.gz/m)
    expect(v.stderr).toMatch(
      /blob sha256:[0-9a-f]{64} is corrupt: expected sha256:[0-9a-f]{64}, got sha256:[0-9a-f]{64}/,
    )
    expect(v.stderr).not.toMatch(/is missing/)
    expect(v.stdout).toBe('')
  })
})

describe('a refused bundle', () => {
  it('serve and import nginx list every problem verify lists, each in its own words, in --json too', async () => {
    const dir = await copyOfGood()
    // Three problems in three archives: a byte only SHA256SUMS sees, a corrupt layer, a missing archive.
    const gz = await readFile(join(dir, 'offline-files.tar.gz'))
    gz[9] ^= 0x01
    await writeFile(join(dir, 'offline-files.tar.gz'), gz)
    const tar = await readFile(join(dir, 'offline-images.tar'))
    tar[tar.indexOf(layer.subarray(100, 140)) + 1] ^= 0xff
    await writeFile(join(dir, 'offline-images.tar'), tar)
    await rm(join(dir, 'component-tools.tar.gz'))

    const v = await runCli(['verify', dir, '--json'])
    expect(v.code, v.stderr).toBe(2)
    const want = (JSON.parse(v.stdout).error.details as string[]).slice().sort()
    expect(want.length).toBeGreaterThanOrEqual(3)

    const port = await freePort()
    const cache = await makeTempDir('airlock-invalid-cache-')
    const s = await runCli(['serve', dir, '--listen', `127.0.0.1:${port}`, '--cache-dir', cache, '--json'], {
      timeoutMs: 120_000,
    })
    expect(s.code, s.stderr).toBe(2)
    const se = JSON.parse(s.stdout).error
    expect(se.message).toBe(`${dir}: the bundle failed verification (${want.length} problems); nothing was served`)
    expect((se.details as string[]).slice().sort()).toEqual(want)
    const plain = await runCli(['serve', dir, '--listen', `127.0.0.1:${port}`, '--cache-dir', cache], {
      timeoutMs: 120_000,
    })
    expect(plain.code).toBe(2)
    expect(plain.stderr).toContain('nothing was served')
    expect(plain.stderr).not.toContain('nothing was imported')
    for (const p of want) expect(plain.stderr).toContain(p)

    const root = await makeTempDir('airlock-invalid-root-')
    const i = await runCli(['import', 'nginx', dir, '--root', root, '--json'])
    expect(i.code, i.stderr).toBe(2)
    const ie = JSON.parse(i.stdout).error
    expect(ie.message).toContain('nothing was imported')
    expect((ie.details as string[]).slice().sort()).toEqual(want)
  })
})
