import {describe, expect, it} from 'vitest'

import {chartPath, checkRelativePath, mirroredPath, MirrorPathError} from '../../src/lib/manifest/mirror-path.js'

describe('mirroredPath', () => {
  it('is the host followed by the path', () => {
    expect(mirroredPath('https://dl.k8s.io/release/v1.29.5/bin/linux/amd64/kubeadm')).toBe(
      'dl.k8s.io/release/v1.29.5/bin/linux/amd64/kubeadm',
    )
  })

  it('keeps a port the URL names and drops a default one', () => {
    expect(mirroredPath('http://127.0.0.1:8081/files/a.tgz')).toBe('127.0.0.1:8081/files/a.tgz')
    expect(mirroredPath('https://example.com:443/a')).toBe('example.com/a')
    expect(mirroredPath('http://example.com:80/a')).toBe('example.com/a')
    expect(mirroredPath('https://example.com:8443/a')).toBe('example.com:8443/a')
  })

  it('drops the query and the fragment, lowercases the host', () => {
    expect(mirroredPath('https://Example.COM/a/b.tar.gz?X-Amz-Signature=abc&y=1#frag')).toBe('example.com/a/b.tar.gz')
  })

  it('percent-decodes each segment', () => {
    expect(mirroredPath('https://example.com/my%20files/caf%C3%A9%2B1.tgz')).toBe('example.com/my files/café+1.tgz')
  })

  it('refuses .., ., empty segments and encoded separators', () => {
    for (const url of [
      'https://example.com/a/../b',
      'https://example.com/a/%2e%2e/b',
      'https://example.com/./b',
      'https://example.com/a//b',
      'https://example.com/a/',
      'https://example.com/',
      'https://example.com',
      'https://example.com/a%2Fb',
      'https://example.com/a%5Cb',
      'https://example.com/a%00b',
      'https://example.com/a%zzb',
    ]) {
      expect(() => mirroredPath(url), url).toThrow(MirrorPathError)
    }
  })

  it('refuses what is not an http(s) URL', () => {
    expect(() => mirroredPath('ftp://example.com/a')).toThrow(/http/)
    expect(() => mirroredPath('not a url')).toThrow(MirrorPathError)
  })
})

describe('checkRelativePath', () => {
  it('accepts a relative path', () => {
    expect(checkRelativePath('helm/helm-v3.14.2-linux-amd64.tar.gz')).toBe('helm/helm-v3.14.2-linux-amd64.tar.gz')
  })

  it('refuses absolute, .., . and empty segments', () => {
    for (const p of ['', '/etc/passwd', '../x', 'a/../../x', 'a/./b', 'a//b', 'a/', 'a\\b']) {
      expect(() => checkRelativePath(p), p).toThrow(MirrorPathError)
    }
  })
})

describe('chartPath', () => {
  it('is charts/<name>-<version>.tgz', () => {
    expect(chartPath('nginx', '15.1.0')).toBe('charts/nginx-15.1.0.tgz')
  })
})
