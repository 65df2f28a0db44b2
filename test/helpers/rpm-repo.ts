/**
 * Real rpm packages and repositories for tests: keys made by gpg, packages
 * built by rpmbuild and signed by rpmsign (Debian's `rpm`), repodata written
 * by createrepo_c (Debian's `createrepo-c`).
 */
import {execFile} from 'node:child_process'
import {mkdir, readdir, rename, writeFile} from 'node:fs/promises'
import {join} from 'node:path'
import {promisify} from 'node:util'

import {makeTempDir} from './tmp.js'

const run = promisify(execFile)

export interface RpmKey {
  /** gpg home holding the secret key. */
  home: string
  uid: string
  /** The public key, armored (what a gpgKey file holds). */
  armored: string
}

/** A signing key without a passphrase: `ed25519` (EdDSA) or `rsa3072`. */
export async function makeRpmKey(
  uid = 'airlock rpm test <rpm@test.invalid>',
  algo: 'ed25519' | 'rsa3072' = 'ed25519',
): Promise<RpmKey> {
  const home = await makeTempDir('airlock-rpmkey-')
  await run('gpg', ['--homedir', home, '--batch', '--passphrase', '', '--quick-gen-key', uid, algo, 'sign', 'never'])
  const {stdout} = await run('gpg', ['--homedir', home, '--armor', '--export', uid])
  return {home, uid, armored: stdout}
}

export interface RpmSpec {
  name: string
  version?: string
  release?: string
  epoch?: number
  /** Requires lines as a spec file writes them, rich ones included. */
  requires?: string[]
  provides?: string[]
  /** Paths the package installs (each a small text file). */
  files?: string[]
}

/** Build noarch packages with rpmbuild; returns their paths. */
export async function buildRpms(specs: RpmSpec[]): Promise<string[]> {
  const top = await makeTempDir('airlock-rpmbuild-')
  await mkdir(join(top, 'SPECS'))
  const out: string[] = []
  for (const s of specs) {
    const files = s.files ?? [`/usr/share/${s.name}/README`]
    const text = [
      `Name: ${s.name}`,
      `Version: ${s.version ?? '1.0'}`,
      `Release: ${s.release ?? '1'}`,
      ...(s.epoch === undefined ? [] : [`Epoch: ${s.epoch}`]),
      'Summary: airlock test package',
      'License: MIT',
      'BuildArch: noarch',
      'AutoReqProv: no',
      ...(s.requires ?? []).map((r) => `Requires: ${r}`),
      ...(s.provides ?? []).map((p) => `Provides: ${p}`),
      '%description',
      'A package made by airlock tests.',
      '%install',
      ...files.map((f) => `mkdir -p "%{buildroot}$(dirname ${f})" && echo ${s.name} > "%{buildroot}${f}"`),
      '%files',
      ...files,
      '',
    ].join('\n')
    const spec = join(top, 'SPECS', `${s.name}.spec`)
    await writeFile(spec, text)
    await run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, spec])
    const evr = `${s.version ?? '1.0'}-${s.release ?? '1'}`
    out.push(join(top, 'RPMS', 'noarch', `${s.name}-${evr}.noarch.rpm`))
  }
  return out
}

/** Sign packages in place with rpmsign --addsign. */
export async function signRpms(files: string[], key: RpmKey): Promise<void> {
  const sign =
    `%{__gpg} gpg --batch --pinentry-mode loopback --passphrase '' --homedir ${key.home} --no-verbose --no-armor ` +
    `%{?_gpg_digest_algo:--digest-algo %{_gpg_digest_algo}} --no-secmem-warning -u "%{_gpg_name}" ` +
    `-sbo %{__signature_filename} %{__plaintext_filename}`
  await run('rpmsign', [
    '--addsign',
    '--define',
    `_gpg_name ${key.uid}`,
    '--define',
    '__gpg /usr/bin/gpg',
    '--define',
    `__gpg_sign_cmd ${sign}`,
    ...files,
  ])
}

/** Move packages into `dir` and write its repodata with createrepo_c. */
export async function createRepo(dir: string, packages: string[], opts: {compress?: 'gz' | 'xz'} = {}): Promise<void> {
  await mkdir(join(dir, 'Packages'), {recursive: true})
  for (const p of packages) await rename(p, join(dir, 'Packages', p.split('/').pop()!))
  await run('createrepo_c', ['--no-database', ...(opts.compress === 'xz' ? ['--xz'] : []), dir])
}

/** The repodata file of one type, e.g. `primary`, as a path. */
export async function repodataFile(dir: string, type: string): Promise<string> {
  const names = await readdir(join(dir, 'repodata'))
  const name = names.find((n) => n.includes(`${type}.xml`))
  if (!name) throw new Error(`no ${type} in ${dir}/repodata`)
  return join(dir, 'repodata', name)
}
