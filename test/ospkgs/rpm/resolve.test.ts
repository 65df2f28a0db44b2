import {createReadStream} from 'node:fs'

import {beforeAll, describe, expect, it} from 'vitest'

import {decompressed} from '../../../src/lib/ospkgs/rpm/decompress.js'
import {readFilelists, readPrimary} from '../../../src/lib/ospkgs/rpm/primary.js'
import {ClosureError, resolveClosure, type RpmCandidate} from '../../../src/lib/ospkgs/rpm/resolve.js'
import {buildRpms, createRepo, repodataFile} from '../../helpers/rpm-repo.js'
import {makeTempDir} from '../../helpers/tmp.js'

// A repository made by rpmbuild and createrepo_c; the resolver reads its primary.xml and filelists.xml.
let packages: RpmCandidate[]
let filelists: string
let filelistReads = 0

beforeAll(async () => {
  const repo = await makeTempDir('airlock-rpmresolve-')
  const rpms = await buildRpms([
    {
      name: 'app',
      requires: [
        'libfoo >= 2',
        '/usr/share/data/file',
        '(backend-a or backend-b)',
        '(app-selinux if selinux-policy)',
        '(app-docs if nosuchthing)',
        'somecap >= 1',
        '/usr/sbin/helper',
      ],
    },
    {name: 'libfoo', version: '1.0'},
    {name: 'libfoo', version: '2.0'},
    {name: 'libfoo', version: '2.1', release: '3'},
    {name: 'datapkg', files: ['/usr/share/data/file']},
    {name: 'backend-b'},
    {name: 'app-selinux'},
    {name: 'app-docs'},
    {name: 'selinux-policy'},
    {name: 'capprov', provides: ['somecap = 1.5']},
    {name: 'helperpkg', files: ['/usr/sbin/helper']},
    {name: 'socat', requires: ['(libfoo < 2 with libfoo >= 1)']},
    {name: 'broken', requires: ['missing-lib']},
  ])
  await createRepo(repo, rpms)
  packages = []
  const primary = await repodataFile(repo, 'primary')
  await readPrimary(decompressed(createReadStream(primary), primary), (p) => packages.push({...p, repo: 0}))
  filelists = await repodataFile(repo, 'filelists')
}, 120_000)

async function resolve(names: string[]): Promise<string[]> {
  const byId = new Map(packages.map((p) => [p.checksum.value, p]))
  const out = await resolveClosure({
    packages,
    architectures: [['x86_64', 'noarch']],
    requested: [names],
    async loadFiles(paths) {
      filelistReads++
      const found = await readFilelists(decompressed(createReadStream(filelists), filelists), paths)
      return new Map([...found].map(([path, ids]) => [path, ids.map((id) => byId.get(id)!)]))
    },
  })
  return out.map((p) => `${p.name}-${p.evr.version}`).sort()
}

describe('resolveClosure', () => {
  it('follows names, capabilities, files from primary and filelists, and rich dependencies; newest wins', async () => {
    filelistReads = 0
    expect(await resolve(['app'])).toEqual([
      'app-1.0',
      'app-selinux-1.0', // (app-selinux if selinux-policy): a node may have selinux-policy
      'backend-b-1.0', // (backend-a or backend-b): the one that exists
      'capprov-1.0', // somecap >= 1, provided as somecap = 1.5
      'datapkg-1.0', // /usr/share/data/file: only in filelists.xml
      'helperpkg-1.0', // /usr/sbin/helper: in primary.xml
      'libfoo-2.1', // libfoo >= 2: the newest
    ])
    // One read of filelists.xml, for the one path primary does not list.
    expect(filelistReads).toBe(1)
  })

  it('takes the one package that meets both sides of a with', async () => {
    expect(await resolve(['socat'])).toEqual(['libfoo-1.0', 'socat-1.0'])
  })

  it('fails on an unknown name with a did-you-mean', async () => {
    const err = await resolve(['socatt']).catch((e) => e)
    expect(err).toBeInstanceOf(ClosureError)
    expect(err.message).toBe('entry 0: no package named socatt in the repositories (did you mean socat?)')
  })

  it('fails naming a requirement nothing provides', async () => {
    await expect(resolve(['broken'])).rejects.toThrow(
      'broken-1.0-1.noarch requires missing-lib: no package provides it',
    )
  })
})
