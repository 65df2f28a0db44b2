import {createReadStream} from 'node:fs'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {aptClosure, AptResolveError, AptUniverse} from '../../src/lib/ospkgs/apt/closure.js'
import {parseDependencies} from '../../src/lib/ospkgs/apt/depends.js'
import {type DebPackage, readPackages} from '../../src/lib/ospkgs/apt/packages-index.js'

/**
 * Stanzas cut from Debian bookworm's main/binary-amd64/Packages (the
 * node-prep closure with its Recommends, every alternative and provider
 * they name; Description and other unused fields dropped).
 */
const FIXTURE = join(__dirname, '..', 'fixtures', 'apt', 'Packages')
const NODE_PREP = ['socat', 'conntrack', 'ipset', 'ipvsadm', 'ebtables', 'nfs-common']
let stanzas: DebPackage[]

const universe = (list: DebPackage[]) => {
  const u = new AptUniverse()
  for (const p of list) u.add(p)
  return u
}
const names = (list: DebPackage[]) => list.map((p) => p.name).sort()
const stanza = (name: string, more: Partial<DebPackage> = {}): DebPackage => ({
  name,
  version: '1.0',
  architecture: 'all',
  essential: false,
  filename: `pool/${name}.deb`,
  size: 1,
  sha256: '0'.repeat(64),
  repo: 0,
  ...more,
})

beforeAll(async () => {
  stanzas = []
  for await (const p of readPackages(createReadStream(FIXTURE, {highWaterMark: 4096}), 0, 'fixture')) stanzas.push(p)
})

describe('apt closure on real bookworm stanzas', () => {
  it('reads every stanza, in small chunks', () => {
    expect(stanzas.length).toBe(149)
    const nfs = stanzas.find((p) => p.name === 'nfs-common')!
    expect(nfs.version).toBe('1:2.6.2-4+deb12u1')
    expect(nfs.sha256).toMatch(/^[0-9a-f]{64}$/)
    expect(parseDependencies(nfs.depends!).length).toBeGreaterThan(5)
  })

  it('the node-prep packages: Depends and Pre-Depends only, the first alternative, every library', () => {
    const c = aptClosure(
      universe(stanzas),
      NODE_PREP.map((name) => ({name})),
      {arch: 'amd64', recommends: false},
    )
    const got = names(c)
    for (const n of [
      ...NODE_PREP,
      'libc6',
      'libnetfilter-conntrack3',
      'libipset13',
      'libtirpc3',
      'rpcbind',
      'keyutils',
    ])
      expect(got).toContain(n)
    // Recommends are left out unless asked (nfs-common recommends python3).
    expect(got).not.toContain('apt')
    expect(c.every((p) => p.architecture === 'amd64' || p.architecture === 'all')).toBe(true)
    expect(new Set(got).size).toBe(got.length)
    const withRecommends = aptClosure(
      universe(stanzas),
      NODE_PREP.map((name) => ({name})),
      {arch: 'amd64', recommends: true},
    )
    expect(withRecommends.length).toBeGreaterThan(c.length)
  })

  it('an unknown name fails with a did-you-mean', () => {
    expect(() => aptClosure(universe(stanzas), [{name: 'socta'}], {arch: 'amd64', recommends: false})).toThrow(
      /no repository has the package socta: did you mean "socat"\?/,
    )
  })

  it('a dependency that no stanza satisfies fails naming it', () => {
    const withoutLibc = stanzas.filter((p) => p.name !== 'libc6')
    expect(() => aptClosure(universe(withoutLibc), [{name: 'socat'}], {arch: 'amd64', recommends: false})).toThrow(
      AptResolveError,
    )
    expect(() => aptClosure(universe(withoutLibc), [{name: 'socat'}], {arch: 'amd64', recommends: false})).toThrow(
      /socat .* depends on libc6 \(>= [^)]+\), which no repository has for amd64/,
    )
  })
})

describe('apt closure rules', () => {
  it('newest version that satisfies the constraint; a met alternative adds nothing; a virtual name through Provides', () => {
    const u = universe([
      stanza('app', {depends: 'lib (>= 1.0) | other, virt, lib2 [!amd64], dep:any'}),
      stanza('lib', {version: '0.9'}),
      stanza('lib', {version: '1.2'}),
      stanza('lib', {version: '1.1'}),
      stanza('other'),
      stanza('prov', {provides: 'virt'}),
      stanza('lib2'),
      stanza('dep', {architecture: 'amd64', multiArch: 'allowed'}),
      stanza('dep', {architecture: 'arm64', version: '9', multiArch: 'allowed'}),
    ])
    const c = aptClosure(u, [{name: 'app'}], {arch: 'amd64', recommends: false})
    expect(c.map((p) => `${p.name} ${p.version} ${p.architecture}`).sort()).toEqual([
      'app 1.0 all',
      'dep 1.0 amd64',
      'lib 1.2 all',
      'prov 1.0 all',
    ])
  })

  it('a versioned dependency is met only by a versioned Provides', () => {
    const u = universe([
      stanza('app', {depends: 'virt (>= 2)'}),
      stanza('plain', {provides: 'virt'}),
      stanza('versioned', {provides: 'virt (= 2.1)'}),
    ])
    expect(names(aptClosure(u, [{name: 'app'}], {arch: 'amd64', recommends: false}))).toEqual(['app', 'versioned'])
  })
})
