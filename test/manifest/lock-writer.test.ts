import {describe, expect, it} from 'vitest'

import {parseManifest} from '../../src/lib/manifest/load.js'
import {writeLocked} from '../../src/lib/manifest/lock-writer.js'

const D = (c: string) => `sha256:${c.repeat(64)}`

const head = `apiVersion: airlock/v1
kind: Manifest
metadata:
  name: demo   # the name
spec:
`

describe('writeLocked', () => {
  it('pins tags in the form they were written, expands selections in place, keeps comments and key order', () => {
    const text = `${head}  images:
    # pinned base
    - nginx   # web
    - ref: quay.io/a:1
      platforms: [all]

    # the api server
    - platforms: [linux/amd64, linux/arm64]
      repository: registry.k8s.io/kube-apiserver
      tags: {semver: ">=1.29.0 <1.30.0", latest: 2}   # newest two
    - "registry.k8s.io/pause:3.9@${D('f')}"
  platforms: [linux/amd64]
`
    const r = writeLocked(text, {
      digests: new Map([
        ['docker.io/library/nginx:latest', D('a')],
        ['quay.io/a:1', D('b')],
      ]),
      expansions: new Map([
        [
          'spec.images[2]',
          [`registry.k8s.io/kube-apiserver:v1.29.3@${D('c')}`, `registry.k8s.io/kube-apiserver:v1.29.2@${D('d')}`],
        ],
      ]),
    })
    expect(r.changed).toBe(true)
    expect(r.text).toBe(`${head}  images:
    # pinned base
    - nginx:latest@${D('a')}   # web
    - ref: quay.io/a:1@${D('b')}
      platforms: [all]

    # the api server
    # locked from repository: registry.k8s.io/kube-apiserver, tags: {semver: ">=1.29.0 <1.30.0", latest: 2} (newest two)
    - ref: registry.k8s.io/kube-apiserver:v1.29.3@${D('c')}
      platforms: [linux/amd64, linux/arm64]
    - ref: registry.k8s.io/kube-apiserver:v1.29.2@${D('d')}
      platforms: [linux/amd64, linux/arm64]
    - "registry.k8s.io/pause:3.9@${D('f')}"
  platforms: [linux/amd64]
`)
    expect(parseManifest(Buffer.from(r.text), 'm.yaml').images).toHaveLength(5)
    // Locked: nothing left to change, byte for byte.
    expect(
      writeLocked(r.text, {digests: new Map([['docker.io/library/nginx:latest', D('e')]]), expansions: new Map()}),
    ).toEqual({text: r.text, changed: false})
  })

  it('turns repositories entries into images entries, creating images where it takes their place', () => {
    const text = `${head}  platforms: [linux/amd64]
  # from the catalog
  repositories:
  - registry: 127.0.0.1:5001
    include: ^team/
    tags: {latest: 1}
    platforms: [all]
  - registry: 127.0.0.1:5001
    include: ^none/
    tags: all
  binaries: []
`
    const r = writeLocked(text, {
      digests: new Map(),
      expansions: new Map([
        ['spec.repositories[0]', [`127.0.0.1:5001/team/a:1.0@${D('a')}`, `127.0.0.1:5001/team/b:2.0@${D('b')}`]],
        ['spec.repositories[1]', []],
      ]),
    })
    expect(r.text).toBe(`${head}  platforms: [linux/amd64]
  images:
  # from the catalog
  # locked from repositories: registry: 127.0.0.1:5001, include: ^team/, tags: {latest: 1}
  - ref: 127.0.0.1:5001/team/a:1.0@${D('a')}
    platforms: [all]
  - ref: 127.0.0.1:5001/team/b:2.0@${D('b')}
    platforms: [all]
  binaries: []
`)
  })

  it('writes flow-style lists through the document API', () => {
    const text = `${head}  images: [nginx:1.25, {repository: r.example.com/app, tags: all}]\n`
    const r = writeLocked(text, {
      digests: new Map([['docker.io/library/nginx:1.25', D('a')]]),
      expansions: new Map([['spec.images[1]', [`r.example.com/app:2@${D('b')}`]]]),
    })
    expect(r.text).toBe(
      `${head.replace('demo   #', 'demo #')}  images: [nginx:1.25@${D('a')}, {ref: r.example.com/app:2@${D('b')}}]\n`,
    )
  })

  it('leaves a file with nothing to pin as it is, spacing and all', () => {
    const text = `${head}  images:\n    - ref:   "quay.io/a:1@${D('a')}"\n      platforms: [ all ]\n`
    expect(writeLocked(text, {digests: new Map(), expansions: new Map()})).toEqual({text, changed: false})
  })
})

describe('writeLocked: files named by checksumUrl', () => {
  const H = (c: string) => c.repeat(64)
  it('writes the sha256 the checksum file gave beside checksumUrl (kept), and a second lock changes nothing', () => {
    const text = `${head}  binaries:
    - url: https://example.com/a.tar.gz   # a
      checksumUrl: https://example.com/a.tar.gz.sha256   # upstream sums
      path: tools/a.tar.gz
    - checksumUrl: https://example.com/SHA256SUMS
      url: https://example.com/b
    - url: https://example.com/c
      sha256: ${H('c')}
  packages:
    - url: https://example.com/p.tgz
      checksumUrl: https://example.com/SHA256SUMS
`
    const checksums = new Map([
      ['https://example.com/a.tar.gz', H('a')],
      ['https://example.com/b', H('b')],
      ['https://example.com/p.tgz', H('d')],
    ])
    const r = writeLocked(text, {digests: new Map(), expansions: new Map(), checksums})
    expect(r.changed).toBe(true)
    expect(r.text).toBe(`${head}  binaries:
    - url: https://example.com/a.tar.gz   # a
      checksumUrl: https://example.com/a.tar.gz.sha256   # upstream sums
      sha256: ${H('a')}
      path: tools/a.tar.gz
    - checksumUrl: https://example.com/SHA256SUMS
      sha256: ${H('b')}
      url: https://example.com/b
    - url: https://example.com/c
      sha256: ${H('c')}
  packages:
    - url: https://example.com/p.tgz
      checksumUrl: https://example.com/SHA256SUMS
      sha256: ${H('d')}
`)
    const m = parseManifest(Buffer.from(r.text), 'm.yaml')
    expect(m.binaries.map((b) => b.sha256)).toEqual([H('a'), H('b'), H('c')])
    expect(m.binaries[0].checksumUrl).toBe('https://example.com/a.tar.gz.sha256')
    expect(writeLocked(r.text, {digests: new Map(), expansions: new Map(), checksums})).toEqual({
      text: r.text,
      changed: false,
    })
  })

  it('pins flow-style entries through the document API', () => {
    const text = `${head}  binaries: [{url: "https://example.com/a", checksumUrl: "https://example.com/a.sha256"}]
`
    const r = writeLocked(text, {
      digests: new Map(),
      expansions: new Map(),
      checksums: new Map([['https://example.com/a', H('a')]]),
    })
    expect(r.changed).toBe(true)
    expect(parseManifest(Buffer.from(r.text), 'm.yaml').binaries[0].sha256).toBe(H('a'))
  })
})
