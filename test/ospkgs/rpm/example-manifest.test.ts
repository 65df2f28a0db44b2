import path from 'node:path'

import {describe, expect, it} from 'vitest'

import {loadManifest} from '../../../src/lib/manifest/load.js'

describe('manifests/node-prep-rocky-9.yaml', () => {
  it('validates offline, both entries of type rpm for x86_64 and noarch', async () => {
    const m = await loadManifest(path.join(import.meta.dirname, '../../../manifests/node-prep-rocky-9.yaml'))
    const entries = m.osPackages ?? []
    expect(entries.map((e) => [e.type, e.path, e.architectures])).toEqual([
      ['rpm', 'dl.rockylinux.org/pub/rocky/9/BaseOS/x86_64/os', ['x86_64', 'noarch']],
      ['rpm', 'dl.rockylinux.org/pub/rocky/9/AppStream/x86_64/os', ['x86_64', 'noarch']],
    ])
    expect(entries.flatMap((e) => e.packages).sort()).toEqual(['conntrack-tools', 'ipset', 'ipvsadm', 'socat'])
  })
})
