import {execFile} from 'node:child_process'
import {randomBytes} from 'node:crypto'
import {mkdir, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {makeTempDir} from './tmp.js'

const run = promisify(execFile)

export interface DebSpec {
  name: string
  version: string
  depends?: string
  provides?: string
  /** Bytes of random (incompressible) content to carry beside the doc file; none unless given. */
  payload?: number
}

export interface AptRepo {
  /** The folder to serve: dists/ and pool/. */
  root: string
  suite: string
  arch: string
  /** Binary keyring with the signing key's public half. */
  keyring: string
  /** gpg home holding the signing key (for re-signing in negative tests). */
  gpgHome: string
  /** Writes dists/SUITE/{Packages*,Release,InRelease} again from pool/ (after a test changed it). */
  reindex(opts?: {signWith?: string}): Promise<void>
  /** Builds more packages into pool/ and reindexes, as an upstream update does. */
  add(debs: DebSpec[]): Promise<void>
}

/** A gpg home with one new ed25519 signing key; returns its home and the binary public keyring. */
export async function makeSigningKey(name: string): Promise<{home: string; keyring: string}> {
  const home = await makeTempDir('airlock-gpg-')
  await run('gpg', [
    '--homedir',
    home,
    '--batch',
    '--passphrase',
    '',
    '--quick-gen-key',
    name,
    'ed25519',
    'sign',
    'never',
  ])
  const keyring = join(home, 'public.gpg')
  await run('gpg', ['--homedir', home, '--batch', '--output', keyring, '--export', name])
  return {home, keyring}
}

/**
 * A signed apt repository made with Debian's own tools: each package built
 * with dpkg-deb (Architecture: all), the indexes and the Release written by
 * apt-ftparchive, InRelease clear-signed by gpg with a fresh key.
 */
export async function makeAptRepo(debs: DebSpec[], opts: {suite?: string; arch: string}): Promise<AptRepo> {
  const root = await makeTempDir('airlock-aptrepo-')
  const suite = opts.suite ?? 'stable'
  const key = await makeSigningKey('airlock test repository')
  const build = await makeTempDir('airlock-debs-')
  await mkdir(join(root, 'pool', 'main'), {recursive: true})
  for (const d of debs) await buildDeb(d, build, root)
  const repo: AptRepo = {
    root,
    suite,
    arch: opts.arch,
    keyring: key.keyring,
    gpgHome: key.home,
    async reindex(o = {}) {
      const bin = join(root, 'dists', suite, 'main', `binary-${opts.arch}`)
      await mkdir(bin, {recursive: true})
      const {stdout} = await run('apt-ftparchive', ['packages', 'pool'], {cwd: root, maxBuffer: 64 << 20})
      await writeFile(join(bin, 'Packages'), stdout)
      await run('sh', ['-c', 'rm -f Packages.gz Packages.xz; gzip -9nk Packages; xz -k Packages'], {cwd: bin})
      const conf = [
        'Origin=airlock',
        'Label=airlock',
        `Suite=${suite}`,
        `Codename=${suite}`,
        `Architectures=${opts.arch}`,
        'Components=main',
      ].flatMap((c) => ['-o', `APT::FTPArchive::Release::${c}`])
      const dists = join(root, 'dists', suite)
      await run('sh', ['-c', 'rm -f Release InRelease Release.gpg'], {cwd: dists})
      const rel = await run('apt-ftparchive', [...conf, 'release', '.'], {cwd: dists, maxBuffer: 16 << 20})
      await writeFile(join(dists, 'Release'), rel.stdout)
      await run('gpg', [
        '--homedir',
        o.signWith ?? key.home,
        '--batch',
        '--yes',
        '--clearsign',
        '--output',
        join(dists, 'InRelease'),
        join(dists, 'Release'),
      ])
    },
    async add(more) {
      for (const d of more) await buildDeb(d, build, root)
      await repo.reindex()
    },
  }
  await repo.reindex()
  return repo
}

/** One package built with dpkg-deb into ROOT/pool/main (Architecture: all), staged under BUILD. */
async function buildDeb(d: DebSpec, build: string, root: string): Promise<void> {
  const dir = join(build, `${d.name}_${d.version}`)
  await mkdir(join(dir, 'DEBIAN'), {recursive: true})
  await mkdir(join(dir, 'usr', 'share', 'doc', d.name), {recursive: true})
  await writeFile(join(dir, 'usr', 'share', 'doc', d.name, 'hello'), `${d.name} ${d.version}\n`)
  if (d.payload) await writeFile(join(dir, 'usr', 'share', 'doc', d.name, 'payload'), randomBytes(d.payload))
  const control = [
    `Package: ${d.name}`,
    `Version: ${d.version}`,
    'Architecture: all',
    'Maintainer: airlock tests <tests@example.invalid>',
    ...(d.depends ? [`Depends: ${d.depends}`] : []),
    ...(d.provides ? [`Provides: ${d.provides}`] : []),
    `Description: ${d.name} for airlock's tests`,
    '',
  ]
  await writeFile(join(dir, 'DEBIAN', 'control'), control.join('\n'))
  await run('dpkg-deb', [
    '--root-owner-group',
    '-Zgzip',
    '--build',
    dir,
    join(root, 'pool', 'main', `${d.name}_${d.version}_all.deb`),
  ])
}
