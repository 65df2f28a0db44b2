import {describe, expect, it} from 'vitest'

import {
  formatReference,
  isLoopbackRegistry,
  isRegistryHost,
  normalizeRegistryHost,
  parseReference,
  registryEndpointHost,
} from '../../src/lib/oci/reference.js'

describe('parseReference', () => {
  it.each([
    ['nginx', 'docker.io/library/nginx:latest'],
    ['nginx:1.25.3', 'docker.io/library/nginx:1.25.3'],
    ['bitnami/nginx:1.25', 'docker.io/bitnami/nginx:1.25'],
    ['index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'],
    ['Registry-1.Docker.IO/nginx:1', 'docker.io/library/nginx:1'],
    ['registry.k8s.io/pause:3.9', 'registry.k8s.io/pause:3.9'],
    ['localhost/app', 'localhost/app:latest'],
    ['127.0.0.1:5001/a/b/c:v1', '127.0.0.1:5001/a/b/c:v1'],
    [`quay.io/x/y@sha256:${'a'.repeat(64)}`, `quay.io/x/y@sha256:${'a'.repeat(64)}`],
    [`quay.io/x/y:1@sha256:${'b'.repeat(64)}`, `quay.io/x/y:1@sha256:${'b'.repeat(64)}`],
  ])('%s -> %s', (input, want) => {
    expect(formatReference(parseReference(input))).toBe(want)
  })

  it.each([
    ['', /empty/],
    ['Nginx', /component "Nginx"/],
    ['nginx:bad tag', /bad tag/],
    ['nginx@sha256:abc', /bad digest/],
    ['nginx@md5:abc', /bad digest/],
    ['a//b', /bad repository path/],
    ['nginx:', /bad tag/],
  ])('refuses %j', (input, msg) => {
    expect(() => parseReference(input)).toThrow(msg)
  })

  it('knows Docker Hub and loopback hosts', () => {
    expect(registryEndpointHost('docker.io')).toBe('registry-1.docker.io')
    expect(isLoopbackRegistry('127.0.0.1:5000')).toBe(true)
    expect(isLoopbackRegistry('localhost:5000')).toBe(true)
    expect(isLoopbackRegistry('[::1]:5000')).toBe(true)
    expect(isLoopbackRegistry('10.0.0.1:5000')).toBe(false)
  })

  it("names Docker Hub's other hosts docker.io, any other host as given", () => {
    expect(
      ['index.docker.io', 'registry-1.docker.io', 'INDEX.docker.io', 'docker.io'].map(normalizeRegistryHost),
    ).toEqual(['docker.io', 'docker.io', 'docker.io', 'docker.io'])
    expect(normalizeRegistryHost('Quay.io')).toBe('Quay.io')
    expect(normalizeRegistryHost('127.0.0.1:5000')).toBe('127.0.0.1:5000')
  })

  it.each([
    ['quay.io', true],
    ['127.0.0.1:5000', true],
    ['[::1]:5000', true],
    ['localhost', true],
    ['-bad.io', false],
    ['host:port', false],
    ['a..b', false],
    ['https://quay.io', false],
  ])('registry host %j: %s', (host, ok) => {
    expect(isRegistryHost(host)).toBe(ok)
  })
})
