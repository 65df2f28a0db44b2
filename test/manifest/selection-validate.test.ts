import {describe, expect, it} from 'vitest'

import {ManifestError, type ManifestProblem} from '../../src/lib/errors.js'
import {parseManifest} from '../../src/lib/manifest/load.js'

const head = `apiVersion: airlock/v1
kind: Manifest
metadata:
  name: test
spec:
`

const parse = (yaml: string) => parseManifest(Buffer.from(head + yaml), 'm.yaml')

function problems(yaml: string): ManifestProblem[] {
  try {
    parse(yaml)
  } catch (error) {
    expect(error).toBeInstanceOf(ManifestError)
    return (error as ManifestError).problems
  }
  throw new Error('expected the manifest to be rejected')
}

describe('manifest: tag selections and repositories', () => {
  it('reads the contract example', () => {
    const m = parse(`  platforms: [linux/amd64]
  images:
    - nginx:1.25.3
    - repository: registry.k8s.io/kube-apiserver
      tags: {semver: ">=1.29.0 <1.30.0", latest: 3}   # the 3 highest in range
    - repository: quay.io/calico/node
      tags: {regex: "^v3\\\\.27\\\\.[0-9]+$", exclude: "-rc"}
      platforms: [linux/amd64, linux/arm64]
    - repository: 127.0.0.1:5001/team/tools
      tags: all
  repositories:
    - registry: 127.0.0.1:5001
      include: "^team/"
      tags: {latest: 1}
`)
    expect(m.images.map((i) => i.name)).toEqual(['docker.io/library/nginx:1.25.3'])
    expect(m.selections).toEqual([
      {
        registry: 'registry.k8s.io',
        repository: 'kube-apiserver',
        tags: {semver: '>=1.29.0 <1.30.0', latest: 3},
        platforms: ['linux/amd64'],
        field: 'spec.images[1]',
        pos: {line: 10, column: 13},
      },
      {
        registry: 'quay.io',
        repository: 'calico/node',
        tags: {regex: '^v3\\.27\\.[0-9]+$', exclude: '-rc'},
        platforms: ['linux/amd64', 'linux/arm64'],
        field: 'spec.images[2]',
        pos: {line: 12, column: 13},
      },
      {
        registry: '127.0.0.1:5001',
        repository: 'team/tools',
        tags: 'all',
        platforms: ['linux/amd64'],
        field: 'spec.images[3]',
        pos: {line: 15, column: 13},
      },
    ])
    expect(m.repositories).toEqual([
      {
        registry: '127.0.0.1:5001',
        include: '^team/',
        tags: {latest: 1},
        platforms: ['linux/amd64'],
        field: 'spec.repositories[0]',
        pos: {line: 17, column: 7},
      },
    ])
  })

  it('reports every bad selection with file:line:column and the field path', () => {
    const ps = problems(`  images:
    - repository: docker.io/library/nginx:1.25
      tags: all
    - repository: r.example.com/app
      tags: {semver: "not a range", regex: "([a-z", latets: 2}
    - repository: r.example.com/app
      tags: {latest: 0}
    - repository: r.example.com/app
      tags: {}
    - repository: r.example.com/app
      tags: latest
    - repository: r.example.com/app
      ref: r.example.com/app:1
      tags: all
    - repository: r.example.com/app
    - repository: r.example.com/app
      tags: {semver: 1.29}
  repositories:
    - registry: https://r.example.com
      include: "*"
      tags: all
    - include: x
`)
    expect(ps.map((p) => `${p.line}:${p.column} ${p.path}: ${p.message}`)).toEqual([
      '7:19 spec.images[0].repository: "docker.io/library/nginx:1.25" names a tag or digest: a repository is host/path, and tags: says which tags to take',
      '10:22 spec.images[1].tags.semver: "not a range" is not a semver range: expected npm\'s syntax, e.g. ">=1.29.0 <1.30.0", "~1.29", "^1.2.0"',
      '10:44 spec.images[1].tags.regex: "([a-z" is not a regular expression: /([a-z/: Unterminated character class',
      '10:53 spec.images[1].tags.latets: unknown field "latets": did you mean "latest"?',
      '12:22 spec.images[2].tags.latest: expected a whole number of at least 1 (how many of the highest versions to keep), got the number 0',
      '14:13 spec.images[3].tags: expected at least one of semver, regex, exclude and latest (or tags: all)',
      '16:13 spec.images[4].tags: expected all, or a mapping with semver, regex, exclude and latest, got "latest"',
      '18:12 spec.images[5].ref: give either ref (one image) or repository with tags (a selection of its tags), not both',
      '20:7 spec.images[6].tags: missing required field "tags"',
      '22:22 spec.images[7].tags.semver: expected a string, got the number 1.29 (quote it: "1.29")',
      '24:17 spec.repositories[0].registry: "https://r.example.com" is not a registry host: expected host or host:port, without a scheme or path',
      '25:16 spec.repositories[0].include: "*" is not a regular expression: /*/: Nothing to repeat',
      '27:7 spec.repositories[1].registry: missing required field "registry"',
      '27:7 spec.repositories[1].tags: missing required field "tags"',
    ])
  })
})
