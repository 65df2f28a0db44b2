import {mkdir, mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ManifestError, type ManifestProblem, UsageError} from '../../src/lib/errors.js'
import {loadManifest, parseManifest} from '../../src/lib/manifest/load.js'
import {bigManifest} from '../helpers/big-manifest.js'

const HEX = 'e424dcdbe661314b6ca1fcc94726eb554bc3f4392b060b9626f9df8d7d44d42c'
const HEX2 = '261dc3f3c384d138835fe91a02071c642af94abb0cca56ebc04719240440944c'

const head = `apiVersion: airlock/v1
kind: Manifest
metadata:
  name: test
spec:
`

function parse(yaml: string) {
  return parseManifest(Buffer.from(yaml), 'm.yaml')
}

function problems(input: string | Buffer): ManifestProblem[] {
  try {
    parseManifest(typeof input === 'string' ? Buffer.from(input) : input, 'm.yaml')
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError)
    return (error as ManifestError).problems
  }
  throw new Error('expected the manifest to be rejected')
}

/** The one problem of a manifest that has exactly one. */
function only(input: string | Buffer): ManifestProblem {
  const ps = problems(input)
  expect(ps, JSON.stringify(ps, null, 2)).toHaveLength(1)
  return ps[0]
}

describe('loadManifest: valid manifests', () => {
  it('normalizes the contract example', () => {
    const m = parse(`apiVersion: airlock/v1
kind: Manifest
metadata:
  name: k8s-1-29-offline
  version: "1.0.0"
spec:
  platforms: [linux/amd64]
  registries:
    - host: 127.0.0.1:5001
      insecure: true
      caFile: certs/ca.crt
  images:
    - docker.io/library/nginx:1.25.3
    - ref: registry.k8s.io/pause:3.9@sha256:${HEX}
      platforms: [linux/amd64, linux/arm64]
    - ref: nginx
      platforms: [all]
  binaries:
    - url: https://dl.k8s.io/release/v1.29.0/bin/linux/amd64/kubeadm
      sha256: ${HEX.toUpperCase()}
    - url: https://get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz
      checksumUrl: https://get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz.sha256sum
      path: helm/helm-v3.14.0-linux-amd64.tar.gz
  packages:
    - url: https://example.com/tools/nerdctl-1.7.0-linux-amd64.tar.gz?download=1
      sha256: ${HEX}
    - chart: {repo: https://charts.example.com/stable/, name: nginx, version: 15.1.0}
    - chart: {ref: oci://registry.example.com/charts/nginx-oci, version: 15.1.0}
`)
    expect(m.name).toBe('k8s-1-29-offline')
    expect(m.version).toBe('1.0.0')
    expect(m.file).toBe('m.yaml')
    expect(m.dir).toBe(path.resolve('.'))
    expect(m.platforms).toEqual(['linux/amd64'])
    expect(m.registries).toEqual([{host: '127.0.0.1:5001', insecure: true, caFile: path.resolve('certs/ca.crt')}])
    expect(m.images.map((i) => [i.name, i.platforms])).toEqual([
      ['docker.io/library/nginx:1.25.3', ['linux/amd64']],
      [`registry.k8s.io/pause:3.9@sha256:${HEX}`, ['linux/amd64', 'linux/arm64']],
      ['docker.io/library/nginx:latest', 'all'],
    ])
    expect(m.images[1].ref).toEqual({
      registry: 'registry.k8s.io',
      repository: 'pause',
      tag: '3.9',
      digest: `sha256:${HEX}`,
    })
    expect(m.images[0].pos).toEqual({line: 13, column: 7})
    expect(m.binaries).toEqual([
      {
        kind: 'binary',
        url: 'https://dl.k8s.io/release/v1.29.0/bin/linux/amd64/kubeadm',
        sha256: HEX,
        path: 'dl.k8s.io/release/v1.29.0/bin/linux/amd64/kubeadm',
        pos: {line: 19, column: 7},
      },
      {
        kind: 'binary',
        url: 'https://get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz',
        checksumUrl: 'https://get.helm.sh/helm-v3.14.0-linux-amd64.tar.gz.sha256sum',
        path: 'helm/helm-v3.14.0-linux-amd64.tar.gz',
        pos: {line: 21, column: 7},
      },
    ])
    expect(m.packages[0]).toMatchObject({
      kind: 'package',
      path: 'example.com/tools/nerdctl-1.7.0-linux-amd64.tar.gz',
      sha256: HEX,
    })
    expect(m.packages[1]).toMatchObject({
      kind: 'chart',
      repo: 'https://charts.example.com/stable',
      name: 'nginx',
      version: '15.1.0',
      path: 'charts/nginx-15.1.0.tgz',
    })
    expect(m.packages[2]).toMatchObject({
      kind: 'chart',
      ociRef: 'oci://registry.example.com/charts/nginx-oci',
      name: 'nginx-oci',
      path: 'charts/nginx-oci-15.1.0.tgz',
    })
  })

  it('defaults platforms to linux/amd64 and lists to empty', () => {
    const m = parse(`${head}  images: [alpine]\n`)
    expect(m.platforms).toEqual(['linux/amd64'])
    expect(m.images[0]).toMatchObject({name: 'docker.io/library/alpine:latest', platforms: ['linux/amd64']})
    expect(m.version).toBeUndefined()
    expect([m.registries, m.binaries, m.packages]).toEqual([[], [], []])
  })

  it('takes spec.referrers: all by default, none, or a list of artifact types', () => {
    expect(parse(`${head}  images: [alpine]\n`).referrers).toBe('all')
    expect(parse(`${head}  referrers: none\n  images: [alpine]\n`).referrers).toBe('none')
    expect(parse(`${head}  referrers: all\n`).referrers).toBe('all')
    expect(
      parse(`${head}  referrers: [application/vnd.cyclonedx+json, application/vnd.dev.cosign.artifact.sig.v1+json]\n`)
        .referrers,
    ).toEqual({
      artifactTypes: ['application/vnd.cyclonedx+json', 'application/vnd.dev.cosign.artifact.sig.v1+json'],
    })
  })

  it('rejects a bad spec.referrers with file:line and the field path', () => {
    expect(only(`${head}  referrers: some\n`)).toMatchObject({
      line: 6,
      path: 'spec.referrers',
      message: expect.stringMatching(/expected all, none or a list of artifact types/),
    })
    expect(only(`${head}  referrers: []\n`)).toMatchObject({
      line: 6,
      path: 'spec.referrers',
      message: expect.stringMatching(/at least one/),
    })
    expect(only(`${head}  referrers:\n    - application/vnd.cyclonedx+json\n    - sbom\n`)).toMatchObject({
      line: 8,
      path: 'spec.referrers[1]',
      message: expect.stringMatching(/not an artifact type/),
    })
    expect(only(`${head}  referrers: [a/b, a/b]\n`)).toMatchObject({
      line: 6,
      path: 'spec.referrers[1]',
      message: expect.stringMatching(/duplicate/),
    })
    expect(only(`${head}  referrer: none\n`)).toMatchObject({
      path: 'spec.referrer',
      message: expect.stringMatching(/did you mean "referrers"/),
    })
  })

  it('gives images the spec platforms unless they set their own', () => {
    const m = parse(
      `${head}  platforms: [linux/arm64/v8, linux/amd64]\n  images:\n    - a\n    - ref: b\n      platforms: [linux/s390x]\n`,
    )
    expect(m.images.map((i) => i.platforms)).toEqual([['linux/arm64/v8', 'linux/amd64'], ['linux/s390x']])
  })

  it('takes a sha256 made only of digits as written', () => {
    const digits = '1234567890'.repeat(6) + '1234'
    const m = parse(`${head}  binaries:\n    - url: https://example.com/a\n      sha256: ${digits}\n`)
    expect(m.binaries[0].sha256).toBe(digits)
  })

  it('accepts a byte order mark, CRLF line ends, a leading ---, anchors and block style', () => {
    const crlf = `\uFEFF---\r\n${head.replaceAll('\n', '\r\n')}  platforms: &p [linux/amd64, linux/arm64]\r\n  images:\r\n  - ref: a\r\n    platforms: *p\r\n`
    const m = parse(crlf)
    expect(m.images[0].platforms).toEqual(['linux/amd64', 'linux/arm64'])
  })

  it('normalizes registry hosts', () => {
    const m = parse(`${head}  registries:\n    - host: Registry.Example.com:5000\n    - host: index.docker.io\n`)
    expect(m.registries.map((r) => r.host)).toEqual(['registry.example.com:5000', 'docker.io'])
  })

  it('validates the shipped Kubernetes 1.29 manifest', async () => {
    const m = await loadManifest(path.join(import.meta.dirname, '../../manifests/kubernetes-1.29-amd64.yaml'))
    expect(m.name).toBe('kubernetes-1.29-amd64')
    expect(m.images.map((i) => i.name)).toContain('registry.k8s.io/kube-apiserver:v1.29.5')
    expect(m.binaries.map((b) => b.path)).toContain('dl.k8s.io/release/v1.29.5/bin/linux/amd64/kubeadm')
    for (const b of [...m.binaries, ...m.packages]) {
      if (b.kind !== 'chart') expect(b.sha256).toMatch(/^[0-9a-f]{64}$/)
    }
    expect(m.packages.map((p) => p.path)).toEqual([
      'get.helm.sh/helm-v3.14.2-linux-amd64.tar.gz',
      'github.com/containerd/nerdctl/releases/download/v1.7.4/nerdctl-1.7.4-linux-amd64.tar.gz',
    ])
  })
})

describe('loadManifest: problems', () => {
  it('reports unknown fields anywhere, with a suggestion', () => {
    const ps = problems(`apiVersion: airlock/v1
kind: Manifest
extra: 1
metadata:
  name: test
  nmae: x
spec:
  image: [a]
  registries:
    - host: r.example.com
      tls: true
  binaries:
    - url: https://example.com/a
      sha256: ${HEX}
      sha265: ${HEX}
  packages:
    - chart: {repo: https://c.example.com, name: n, version: 1.0.0, digest: x}
`)
    expect(ps.map((p) => [p.line, p.column, p.path])).toEqual([
      [3, 1, 'extra'],
      [6, 3, 'metadata.nmae'],
      [8, 3, 'spec.image'],
      [11, 7, 'spec.registries[0].tls'],
      [15, 7, 'spec.binaries[0].sha265'],
      [17, 69, 'spec.packages[0].chart.digest'],
    ])
    expect(ps[2].message).toContain('did you mean "images"?')
    expect(ps[4].message).toContain('did you mean "sha256"?')
    expect(ps[0].message).toContain('unknown field "extra"')
  })

  it('reports wrong types with what was expected', () => {
    const ps = problems(`apiVersion: airlock/v1
kind: Manifest
metadata:
  name: test
  version: 1.0
spec:
  platforms: linux/amd64
  registries:
    - host: r.example.com
      insecure: "yes"
  images:
    ref: a
  binaries:
    - https://example.com/a
`)
    expect(ps.map((p) => [p.line, p.path])).toEqual([
      [5, 'metadata.version'],
      [7, 'spec.platforms'],
      [10, 'spec.registries[0].insecure'],
      [12, 'spec.images'],
      [14, 'spec.binaries[0]'],
    ])
    expect(ps[0].message).toBe('expected a string, got the number 1.0 (quote it: "1.0")')
    expect(ps[1].message).toContain('expected a list of os/arch')
    expect(ps[2].message).toContain('expected true or false')
    expect(ps[3].message).toContain('got a mapping')
    expect(ps[4].message).toContain('expected a mapping with url')
  })

  it('checks apiVersion, kind, metadata.name and required fields', () => {
    const ps = problems('apiVersion: airlock/v2\nkind: Bundle\nmetadata:\n  name: Not_Valid\n')
    expect(ps.map((p) => [p.path, p.line, p.column])).toEqual([
      ['spec', 1, 1],
      ['apiVersion', 1, 13],
      ['kind', 2, 7],
      ['metadata.name', 4, 9],
    ])
    expect(ps[0].message).toBe('missing required field "spec"')
    expect(only('apiVersion: airlock/v1\nkind: Manifest\nmetadata: {}\nspec: {}\n').path).toBe('metadata.name')
    expect(only('- a\n- b\n').message).toContain('expected a mapping with apiVersion')
  })

  it('rejects bad sha256 values', () => {
    const bad = ['abc', `${HEX}0`, `sha256:${HEX}`, `${HEX.slice(0, 63)}g`]
    for (const s of bad) {
      const p = only(`${head}  binaries:\n    - url: https://example.com/a\n      sha256: "${s}"\n`)
      expect(p, s).toMatchObject({path: 'spec.binaries[0].sha256', line: 8, column: 15})
      expect(p.message).toContain('expected 64 hex digits')
    }
    expect(
      only(`${head}  binaries:\n    - url: https://example.com/a\n      sha256: "sha256:${HEX}"\n`).message,
    ).toContain('without the sha256: prefix')
  })

  it('reports the path of the fourth binary', () => {
    const entries = [0, 1, 2].map((i) => `    - url: https://example.com/${i}\n      sha256: ${HEX}\n`).join('')
    const p = only(`${head}  binaries:\n${entries}    - url: https://example.com/3\n      sha256: nothex\n`)
    expect(p).toMatchObject({file: 'm.yaml', path: 'spec.binaries[3].sha256', line: 14, column: 15})
  })

  it('rejects bad digests and bad image references', () => {
    const ps = problems(`${head}  images:
    - registry.k8s.io/pause:3.9@sha256:abc
    - registry.k8s.io/pause@md5:${HEX.slice(0, 32)}
    - UPPER/case
    - "nginx:"
    - "a b"
    - ""
    - reg.example.com//x
`)
    expect(ps.map((p) => p.path)).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `spec.images[${i}]`))
    expect(ps[0].message).toContain('bad digest')
    for (const p of ps) expect(p.message).toMatch(/^bad image reference/)
  })

  it('rejects non-http(s) URLs and credentials inside URLs', () => {
    const ps = problems(`${head}  binaries:
    - url: ftp://example.com/a
      sha256: ${HEX}
    - url: file:///etc/passwd
      sha256: ${HEX}
    - url: https://user:secret@example.com/b
      sha256: ${HEX}
    - url: https://example.com/c
      checksumUrl: https://token@example.com/c.sha256
    - url: example.com/d
      sha256: ${HEX}
  packages:
    - chart: {repo: "oci://registry.example.com/charts", name: a, version: 1.0.0}
`)
    expect(ps.map((p) => p.path)).toEqual([
      'spec.binaries[0].url',
      'spec.binaries[1].url',
      'spec.binaries[2].url',
      'spec.binaries[3].checksumUrl',
      'spec.binaries[4].url',
      'spec.packages[0].chart.repo',
    ])
    expect(ps[2].message).toContain('credentials inside a URL are refused')
    expect(ps[3].message).toContain('credentials inside a URL are refused')
    // Never echo the secret back.
    for (const p of ps) expect(p.message).not.toContain('secret')
  })

  it('requires sha256 or checksumUrl, and takes both', () => {
    const ps = problems(`${head}  binaries:
    - url: https://example.com/a
    - url: https://example.com/b
      sha256: ${HEX}
      checksumUrl: https://example.com/b.sha256
`)
    // Both is what lock writes: the sha256 is checked, checksumUrl kept for reference.
    expect(ps.map((p) => [p.path, p.line])).toEqual([['spec.binaries[0].sha256', 7]])
    expect(ps[0].message).toContain('missing checksum')
  })

  it('rejects duplicate entries', () => {
    const ps = problems(`${head}  platforms: [linux/amd64, linux/amd64]
  registries:
    - host: r.example.com
    - host: R.example.com
  images:
    - nginx
    - docker.io/library/nginx:latest
    - index.docker.io/library/nginx
  binaries:
    - url: https://example.com/a
      sha256: ${HEX}
    - url: https://example.com/a
      sha256: ${HEX}
    - url: https://mirror.example.com/a
      sha256: ${HEX}
      path: example.com/a
    - url: https://other.example.com/a
      sha256: ${HEX2}
      path: example.com/a
  packages:
    - chart: {repo: https://c.example.com, name: n, version: 1.0.0}
    - chart: {ref: oci://r.example.com/x/n, version: 1.0.0}
`)
    expect(ps.map((p) => p.path)).toEqual([
      'spec.platforms[1]',
      'spec.registries[1].host',
      'spec.images[1]',
      'spec.images[2]',
      'spec.binaries[1].url',
      'spec.binaries[2].path',
      'spec.binaries[3].path',
      'spec.packages[1].chart',
    ])
    expect(ps[2].message).toBe('duplicate image docker.io/library/nginx:latest (also spec.images[0])')
    expect(ps[4].message).toContain('same URL')
    expect(ps[5].message).toContain('duplicate entry')
    expect(ps[6].message).toContain('with a different checksum')
    expect(ps[7].message).toContain('charts/n-1.0.0.tgz')
  })

  it('allows the same URL once as a binary and once as a package', () => {
    const m = parse(
      `${head}  binaries:\n    - url: https://example.com/a\n      sha256: ${HEX}\n  packages:\n    - url: https://example.com/a\n      sha256: ${HEX}\n`,
    )
    expect([m.binaries[0].path, m.packages[0].path]).toEqual(['example.com/a', 'example.com/a'])
  })

  it('rejects a binary and a package at one path with different checksums, as the importers put both in one tree', () => {
    const p = only(`${head}  binaries:
    - url: https://example.com/a
      sha256: ${HEX}
  packages:
    - url: https://mirror.example.com/a
      sha256: ${HEX2}
      path: example.com/a
`)
    expect(p).toMatchObject({path: 'spec.packages[0].path', line: 12, column: 13})
    expect(p.message).toContain('spec.binaries[0] maps to the same path "example.com/a" with a different checksum')
  })

  it('rejects a file where another entry needs a folder', () => {
    const p = only(`${head}  binaries:
    - url: https://example.com/a/b
      sha256: ${HEX}
    - url: https://example.com/a/b-c
      sha256: ${HEX}
    - url: https://example.com/a/b/c
      sha256: ${HEX}
`)
    expect(p).toMatchObject({path: 'spec.binaries[2].url', line: 11})
    expect(p.message).toContain('"example.com/a/b" is a file for spec.binaries[0]')
  })

  it('rejects bad path overrides and URLs without a file name', () => {
    const ps = problems(`${head}  binaries:
${['../x', '/abs/x', 'a//b', 'a/./b', ''].map((p, i) => `    - url: https://example.com/${i}\n      sha256: ${HEX}\n      path: "${p}"\n`).join('')}    - url: https://example.com/dir/
      sha256: ${HEX}
`)
    expect(ps.map((p) => p.path)).toEqual(
      [0, 1, 2, 3, 4].map((i) => `spec.binaries[${i}].path`).concat('spec.binaries[5].url'),
    )
    expect(ps[5].message).toContain('give a path:')
  })

  it('checks platforms', () => {
    const ps = problems(`${head}  platforms: [all]
  images:
    - ref: a
      platforms: [all, linux/amd64]
    - ref: b
      platforms: []
    - ref: c
      platforms: [Linux/AMD64]
    - ref: d
      platforms: [linux]
`)
    expect(ps.map((p) => p.path)).toEqual([
      'spec.platforms[0]',
      'spec.images[0].platforms',
      'spec.images[1].platforms',
      'spec.images[2].platforms[0]',
      'spec.images[3].platforms[0]',
    ])
  })

  it('checks chart entries', () => {
    const ps = problems(`${head}  packages:
    - chart: {repo: https://c.example.com, version: 1.0.0}
    - chart: {name: x, version: 1.0.0}
    - chart: {repo: https://c.example.com, ref: oci://r.example.com/a, name: x, version: 1.0.0}
    - chart: {ref: oci://r.example.com/a:1.0, version: 1.0.0}
    - chart: {ref: "https://r.example.com/a", version: 1.0.0}
    - chart: {repo: https://c.example.com, name: x, version: 1.0}
    - chart: {repo: https://c.example.com, name: x, version: 1.0.0}
      url: https://example.com/a
    - chart: {repo: https://c.example.com, name: "../x", version: 1.0.0}
`)
    expect(ps.map((p) => p.path)).toEqual([
      'spec.packages[0].chart.name',
      'spec.packages[1].chart.repo',
      'spec.packages[2].chart.ref',
      'spec.packages[3].chart.ref',
      'spec.packages[4].chart.ref',
      'spec.packages[5].chart.version',
      'spec.packages[6].url',
      'spec.packages[7].chart.name',
    ])
    expect(ps[6].message).toContain('a chart entry has only chart')
  })

  it('reports YAML syntax errors with their positions', () => {
    const ps = problems(`${head}  images: [a, b\n  binaries: x\n`)
    expect(ps.length).toBeGreaterThan(0)
    expect(ps[0].message).toMatch(/^YAML syntax error: /)
    expect(ps[0].line).toBeGreaterThanOrEqual(6)
    const dup = only(`${head}  images: []\n  images: []\n`)
    expect(dup).toMatchObject({line: 7, column: 3})
    expect(dup.message).toMatch(/unique/)
    expect(only('a: b: c\n').message).toMatch(/^YAML syntax error/)
    expect(only('a: 1\n---\nb: 2\n').message).toMatch(/^YAML syntax error/)
  })

  it('reports an empty file', () => {
    for (const text of ['', '   \n\n', '# only a comment\n']) {
      expect(only(text)).toMatchObject({line: 1, column: 1, path: ''})
      expect(only(text).message).toContain('empty')
    }
  })

  it('reports invalid UTF-8 and where it is', () => {
    const bytes = Buffer.concat([
      Buffer.from(`${head}  images:\n    - caf\u00e9`),
      Buffer.from([0xff, 0xfe]),
      Buffer.from('\n'),
    ])
    const p = only(bytes)
    expect(p).toMatchObject({line: 7, column: 11})
    expect(p.message).toContain('invalid UTF-8 (byte 0xff')
    // A truncated multi-byte sequence at the very end.
    expect(only(Buffer.concat([Buffer.from('a: b\n'), Buffer.from([0xe2, 0x82])]))).toMatchObject({line: 2, column: 1})
  })

  it('lists every problem, sorted by position', () => {
    const ps = problems(
      `apiVersion: x\nkind: y\nmetadata:\n  name: "-"\nspec:\n  images: [UPPER]\n  binaries:\n    - url: ftp://x/y\n`,
    )
    expect(ps.length).toBe(6)
    const order = ps.map((p) => p.line * 1000 + p.column)
    expect(order).toEqual([...order].sort((a, b) => a - b))
    expect(new ManifestError('m.yaml', ps).details[0]).toBe('m.yaml:1:13: apiVersion: expected "airlock/v1", got "x"')
  })
})

describe('loadManifest: files', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'airlock-manifest-'))
  })
  afterAll(async () => {
    await rm(dir, {recursive: true, force: true})
  })

  it('throws UsageError for a missing file or a directory', async () => {
    await expect(loadManifest(path.join(dir, 'nope.yaml'))).rejects.toThrow(UsageError)
    await expect(loadManifest(path.join(dir, 'nope.yaml'))).rejects.toThrow(/manifest not found/)
    await expect(loadManifest(dir)).rejects.toThrow(/directory/)
  })

  it('resolves caFile against the manifest folder', async () => {
    await mkdir(path.join(dir, 'sub'), {recursive: true})
    const file = path.join(dir, 'sub', 'm.yaml')
    await writeFile(
      file,
      `${head}  registries:\n    - host: 127.0.0.1:5001\n      caFile: certs/ca.crt\n    - host: r.example.com\n      caFile: /etc/ssl/ca.pem\n`,
    )
    const m = await loadManifest(file)
    expect(m.dir).toBe(path.join(dir, 'sub'))
    expect(m.registries.map((r) => r.caFile)).toEqual([path.join(dir, 'sub', 'certs', 'ca.crt'), '/etc/ssl/ca.pem'])
  })

  // Its speed is measured by `npm run bench -- validate`, not here: a timing under a busy machine's load only flakes.
  it('validates a large manifest in full, and finds a problem on its last line', async () => {
    const big = bigManifest(1_000_000)
    const file = path.join(dir, 'big.yaml')
    await writeFile(file, big.text)
    const m = await loadManifest(file)
    expect(m.images).toHaveLength(big.images)
    expect(m.binaries).toHaveLength(big.binaries)

    await writeFile(file, `${big.text}    - url: https://downloads.example.com/last\n      sha256: bad\n`)
    const err = await loadManifest(file).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ManifestError)
    expect((err as ManifestError).problems).toEqual([
      expect.objectContaining({path: `spec.binaries[${big.binaries}].sha256`, line: big.text.split('\n').length + 1}),
    ])
  })
})
