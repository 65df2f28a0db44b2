import {describe, expect, it} from 'vitest'

import {containerdMissWarning, mirrorConfig, type MirroredName} from '../../src/lib/mirror-config/mirror-config.js'

const file = (
  names: MirroredName[],
  url = 'http://reg:5000',
  opts: {skipVerify?: boolean; privateCa?: boolean} = {},
) => {
  const c = mirrorConfig(names, {url, ...opts}, 'airlock import registry')
  return {c, at: (path: string) => c.files.find((f) => f.path === path)?.content}
}

describe('mirror config files', () => {
  it('Docker Hub as each runtime expects: certs.d/docker.io with registry-1.docker.io, prefix docker.io, mirrors."docker.io"', () => {
    const {at} = file([{registry: 'docker.io', repository: 'library/nginx', target: 'mirror/library/nginx'}])
    expect(at('containerd/certs.d/docker.io/hosts.toml')).toBe(
      'server = "https://registry-1.docker.io"\n\n[host."http://reg:5000/v2/mirror"]\n  capabilities = ["pull", "resolve"]\n  override_path = true\n',
    )
    expect(at('registries.conf')).toContain(
      '[[registry]]\nprefix = "docker.io"\nlocation = "reg:5000/mirror"\ninsecure = true\n',
    )
    expect(at('registries.yaml')).toContain(
      'mirrors:\n  "docker.io":\n    endpoint:\n      - "http://reg:5000"\n    rewrite:\n      "^(.*)$": "mirror/$1"\n',
    )
  })

  it('no prefix: the plain hosts.toml, no rewrite; HTTPS is not insecure unless TLS is not verified', () => {
    const {at} = file([{registry: 'quay.io', repository: 'calico/node', target: 'calico/node'}], 'https://reg')
    expect(at('containerd/certs.d/quay.io/hosts.toml')).toBe(
      'server = "https://quay.io"\n\n[host."https://reg"]\n  capabilities = ["pull", "resolve"]\n',
    )
    expect(at('registries.conf')).not.toContain('insecure')
    expect(at('registries.yaml')).not.toContain('    rewrite:')
    const skip = file([{registry: 'quay.io', repository: 'calico/node', target: 'calico/node'}], 'https://reg', {
      skipVerify: true,
    })
    expect(skip.at('containerd/certs.d/quay.io/hosts.toml')).toContain('  skip_verify = true\n')
    expect(skip.at('registries.conf')).toContain('insecure = true')
    expect(skip.at('registries.yaml')).toContain('configs:\n  "reg":\n    tls:\n      insecure_skip_verify: true\n')
  })

  it('a renamed repository: its own registries.conf entry, one anchored rewrite per repository, and in hosts.toml a comment and the warning', () => {
    const names = [
      {registry: 'quay.io', repository: 'calico/node', target: 'ns/tools-calico/node'},
      {registry: 'quay.io', repository: 'calico/cni', target: 'ns/calico/cni'},
      {registry: 'quay.io', repository: 'a.b/c', target: 'ns/a.b/c'},
    ]
    const {c, at} = file(names)
    const hosts = at('containerd/certs.d/quay.io/hosts.toml')!
    expect(hosts).toContain('[host."http://reg:5000/v2/ns"]')
    expect(hosts).toContain('#   quay.io/calico/node -> reg:5000/ns/tools-calico/node\n')
    expect(c.containerdMisses).toEqual([{source: 'quay.io/calico/node', target: 'reg:5000/ns/tools-calico/node'}])
    expect(containerdMissWarning(c, '/out')).toContain('quay.io/calico/node (at reg:5000/ns/tools-calico/node)')
    expect(at('registries.conf')).toContain(
      'prefix = "quay.io/calico/node"\nlocation = "reg:5000/ns/tools-calico/node"\n',
    )
    const yaml = at('registries.yaml')!
    expect(yaml).toContain('"^calico/node$": "ns/tools-calico/node"')
    expect(yaml).toContain('"^calico/cni$": "ns/calico/cni"')
    expect(yaml).toContain('"^a\\\\.b/c$": "ns/a.b/c"')
    expect(yaml).not.toContain('(.*)')
    expect(containerdMissWarning(file([names[1]]).c, '/out')).toBeUndefined()
  })
})
