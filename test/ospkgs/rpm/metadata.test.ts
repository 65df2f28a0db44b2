import {execFileSync} from 'node:child_process'
import {createReadStream} from 'node:fs'
import {readFile} from 'node:fs/promises'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {decompressed} from '../../../src/lib/ospkgs/rpm/decompress.js'
import {readFilelists, readPrimary, type RpmPackage} from '../../../src/lib/ospkgs/rpm/primary.js'
import {parseRepomd, repomdData} from '../../../src/lib/ospkgs/rpm/repomd.js'
import {buildRpms, createRepo, repodataFile} from '../../helpers/rpm-repo.js'
import {makeTempDir} from '../../helpers/tmp.js'

// Repodata written by createrepo_c from packages rpmbuild made.
let repo: string
beforeAll(async () => {
  repo = await makeTempDir('airlock-rpmrepo-')
  const rpms = await buildRpms([
    {
      name: 'alpha',
      version: '1.2',
      release: '3.el9',
      epoch: 2,
      requires: ['beta >= 2', '/usr/share/gamma/data', '(delta or epsilon)', 'rpmlib(PayloadIsZstd) <= 5.4.18-1'],
      provides: ['alphacap = 3'],
      files: ['/usr/bin/alpha', '/usr/share/alpha/x', '/etc/alpha.conf'],
    },
    {name: 'gamma', files: ['/usr/share/gamma/data']},
  ])
  await createRepo(repo, rpms)
}, 60_000)

async function primaryOf(path: string): Promise<RpmPackage[]> {
  const out: RpmPackage[] = []
  await readPrimary(decompressed(createReadStream(path), path), (p) => out.push(p))
  return out
}

describe('repomd.xml', () => {
  it('lists each data type with location, checksum and sizes', async () => {
    const md = await parseRepomd(await readFile(join(repo, 'repodata', 'repomd.xml'), 'utf8'))
    const primary = repomdData(md, 'primary')!
    expect(primary.location).toMatch(/^repodata\/[0-9a-f]{64}-primary\.xml\.gz$/)
    expect(primary.checksum.type).toBe('sha256')
    expect(primary.checksum.value).toMatch(/^[0-9a-f]{64}$/)
    const bytes = await readFile(join(repo, primary.location))
    expect(primary.size).toBe(bytes.length)
    expect(primary.openSize).toBeGreaterThan(bytes.length)
    expect(repomdData(md, 'filelists')?.location).toMatch(/filelists\.xml\.gz$/)
    expect(repomdData(md, 'other')).toBeDefined()
    expect(md.revision).toMatch(/^\d+$/)
  })

  it('refuses a document that is not repomd.xml', async () => {
    await expect(parseRepomd('<html><body>404</body></html>')).rejects.toThrow(/not a repomd\.xml/)
    await expect(parseRepomd('<repomd><data type="primary">')).rejects.toThrow()
  })
})

describe('primary.xml', () => {
  it('reads name, arch, EVR, checksum, location, size, provides, requires and the listed files', async () => {
    const pkgs = await primaryOf(await repodataFile(repo, 'primary'))
    const alpha = pkgs.find((p) => p.name === 'alpha')!
    expect(alpha.arch).toBe('noarch')
    expect(alpha.evr).toEqual({epoch: 2, version: '1.2', release: '3.el9'})
    expect(alpha.location).toBe('Packages/alpha-1.2-3.el9.noarch.rpm')
    expect(alpha.size).toBe((await readFile(join(repo, alpha.location))).length)
    expect(alpha.checksum.type).toBe('sha256')
    expect(alpha.provides).toContainEqual({name: 'alphacap', flags: 'EQ', evr: {epoch: 0, version: '3'}})
    expect(alpha.provides).toContainEqual({
      name: 'alpha',
      flags: 'EQ',
      evr: {epoch: 2, version: '1.2', release: '3.el9'},
    })
    expect(alpha.requires).toContainEqual({name: 'beta', flags: 'GE', evr: {epoch: 0, version: '2'}})
    expect(alpha.requires).toContainEqual({name: '(delta or epsilon)'})
    expect(alpha.requires).toContainEqual({name: '/usr/share/gamma/data'})
    // Only /etc/* and *bin/* are in primary; the rest is in filelists.
    expect(alpha.files.sort()).toEqual(['/etc/alpha.conf', '/usr/bin/alpha'])
  })

  it('reads zstd-compressed metadata as createrepo_c 1.0 writes it', async () => {
    const gz = await repodataFile(repo, 'primary')
    const dir = await makeTempDir()
    const zst = join(dir, 'primary.xml.zst')
    execFileSync('sh', ['-c', `gzip -dc ${gz} | zstd -q -o ${zst}`])
    expect((await primaryOf(zst)).map((p) => p.name).sort()).toEqual(['alpha', 'gamma'])
  })

  it('reads xz-compressed metadata (createrepo_c --xz)', async () => {
    const gz = await repodataFile(repo, 'primary')
    const dir = await makeTempDir()
    const xz = join(dir, 'primary.xml.xz')
    execFileSync('sh', ['-c', `gzip -dc ${gz} | xz -c > ${xz}`])
    expect((await primaryOf(xz)).map((p) => p.name).sort()).toEqual(['alpha', 'gamma'])
  })

  it('fails on a truncated document', async () => {
    const text = execFileSync('gzip', ['-dc', await repodataFile(repo, 'primary')], {encoding: 'utf8'})
    await expect(readPrimary([text.slice(0, text.length / 2)], () => {})).rejects.toThrow()
  })
})

describe('filelists.xml', () => {
  it('maps only the wanted paths to the ids of the packages that hold them', async () => {
    const pkgs = await primaryOf(await repodataFile(repo, 'primary'))
    const gamma = pkgs.find((p) => p.name === 'gamma')!
    const path = await repodataFile(repo, 'filelists')
    const found = await readFilelists(
      decompressed(createReadStream(path), path),
      new Set(['/usr/share/gamma/data', '/nowhere']),
    )
    expect([...found]).toEqual([['/usr/share/gamma/data', [gamma.checksum.value]]])
  })
})
