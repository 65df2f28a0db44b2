import {describe, expect, it} from 'vitest'

import {ManifestError} from '../../src/lib/errors.js'
import {parseManifest} from '../../src/lib/manifest/load.js'

const head = ['apiVersion: airlock/v1', 'kind: Manifest', 'metadata:', '  name: t', 'spec:']
const parse = (lines: string[]) => parseManifest(Buffer.from([...head, ...lines, ''].join('\n')), '/m/t.yaml')
const problems = (lines: string[]) => {
  try {
    parse(lines)
  } catch (err) {
    if (err instanceof ManifestError) return err.details
    throw err
  }
  return []
}

describe('spec.osPackages', () => {
  it('apt and rpm entries with their defaults: components [main], architectures from spec.platforms, recommends false, noarch for rpm', () => {
    const m = parse([
      '  platforms: [linux/amd64, linux/arm64]',
      '  osPackages:',
      '    - type: apt',
      '      url: http://deb.debian.org/debian/',
      '      suites: [bookworm]',
      '      keyring: keys/debian.gpg',
      '      packages: [socat, libc6:amd64]',
      '    - type: rpm',
      '      url: https://dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
      '      gpgKey: keys/RPM-GPG-KEY-Rocky-9',
      '      packages: [conntrack-tools]',
    ])
    expect(m.osPackages).toEqual([
      expect.objectContaining({
        type: 'apt',
        url: 'http://deb.debian.org/debian',
        path: 'deb.debian.org/debian',
        suites: ['bookworm'],
        components: ['main'],
        architectures: ['amd64', 'arm64'],
        keyring: '/m/keys/debian.gpg',
        recommends: false,
        packages: ['socat', 'libc6:amd64'],
      }),
      expect.objectContaining({
        type: 'rpm',
        path: 'dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os',
        architectures: ['x86_64', 'aarch64', 'noarch'],
        gpgKey: '/m/keys/RPM-GPG-KEY-Rocky-9',
      }),
    ])
  })

  it('every problem with its line and column and a did-you-mean', () => {
    const got = problems([
      '  osPackages:',
      '    - type: atp',
      '      url: http://x/debian',
      '    - type: apt',
      '      url: http://deb.debian.org/debian',
      '      suite: [bookworm]',
      '      keyring: k.gpg',
      '      packages: [Socat]',
      '    - type: apt',
      '      url: http://deb.debian.org/debian',
      '      suites: [bookworm]',
      '      keyring: other.gpg',
      '      packages: [socat]',
      '    - type: rpm',
      '      url: https://example.org/os',
      '      gpgKey: k.asc',
      '      packages: []',
    ])
    expect(got).toEqual([
      '/m/t.yaml:7:13: spec.osPackages[0].type: unknown type "atp": did you mean "apt"?',
      '/m/t.yaml:9:7: spec.osPackages[1].suites: missing required field "suites"',
      '/m/t.yaml:11:7: spec.osPackages[1].suite: unknown field "suite": did you mean "suites"?',
      '/m/t.yaml:13:18: spec.osPackages[1].packages[0]: "Socat" is not a package name',
      '/m/t.yaml:17:16: spec.osPackages[2].keyring: spec.osPackages[1] names the same url with another keyring: one repository is checked with one key',
      '/m/t.yaml:22:17: spec.osPackages[3].packages: expected at least one name',
    ])
  })
})
