import {describe, expect, it} from 'vitest'

import {UsageError} from '../../src/lib/errors.js'
import {checkTargetOptions, targetFor} from '../../src/lib/importers/registry-target.js'

const D = `sha256:${'a'.repeat(64)}`

describe('targetFor', () => {
  it('drops the source registry host and keeps the tag', () => {
    const t = targetFor('docker.io/library/nginx:1.25.3', D, {registry: 'reg.local:5000'})
    expect(t.repository).toBe('library/nginx')
    expect(t.ref).toBe('reg.local:5000/library/nginx:1.25.3')
    expect(t.reference).toBe('1.25.3')
  })

  it('puts the namespace first', () => {
    const t = targetFor('registry.k8s.io/kube-apiserver:v1.29.0', D, {registry: 'reg.local', namespace: 'mirror/k8s'})
    expect(t.ref).toBe('reg.local/mirror/k8s/kube-apiserver:v1.29.0')
  })

  it('keeps the source host as a path component when asked, a port made valid', () => {
    expect(targetFor('docker.io/library/nginx:1', D, {registry: 'r', keepRegistryHost: true}).ref).toBe('r/docker.io/library/nginx:1')
    expect(targetFor('127.0.0.1:5001/app/web:2', D, {registry: 'r', namespace: 'ns', keepRegistryHost: true}).repository).toBe(
      'ns/127.0.0.1_5001/app/web',
    )
  })

  it('pushes by digest when the source names none but a digest, by tag when it names both', () => {
    const pinned = targetFor(`registry.k8s.io/pause@${D}`, D, {registry: 'r'})
    expect(pinned.reference).toBe(D)
    expect(pinned.ref).toBe(`r/pause@${D}`)
    expect(targetFor(`registry.k8s.io/pause:3.9@${D}`, D, {registry: 'r'}).reference).toBe('3.9')
  })
})

describe('checkTargetOptions', () => {
  it('accepts host[:port], strips a scheme and slashes', () => {
    expect(checkTargetOptions({registry: 'https://reg.local:5000/', namespace: '/ns/'})).toEqual({
      registry: 'reg.local:5000',
      namespace: 'ns',
      keepRegistryHost: false,
    })
  })

  it('refuses a path in --registry and a bad namespace', () => {
    expect(() => checkTargetOptions({registry: 'reg.local/ns'})).toThrow(UsageError)
    expect(() => checkTargetOptions({registry: 'reg.local', namespace: 'Bad'})).toThrow(/bad component/)
  })
})
