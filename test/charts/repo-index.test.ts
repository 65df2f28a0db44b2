import {describe, expect, it} from 'vitest'

import {chartUrl, findChart, indexUrl, parseRepoIndex} from '../../src/lib/charts/repo-index.js'
import {compareVersions} from '../../src/lib/charts/version.js'
import {FailureError} from '../../src/lib/errors.js'

const D1 = '1'.repeat(64)
const D2 = '2'.repeat(64)
const INDEX = `apiVersion: v1
entries:
  nginx:
    - name: nginx
      version: 15.1.0
      apiVersion: v2
      appVersion: 1.25.3
      digest: ${D1}
      urls: [charts/nginx-15.1.0.tgz]
      created: "2024-01-01T00:00:00Z"
    - name: nginx
      version: 15.0.2
      digest: sha256:${D2}
      urls: [https://cdn.example.test/nginx-15.0.2.tgz]
    - name: nginx
      version: 9.0.0
      urls: [nginx-9.0.0.tgz]
  redis:
    - name: redis
      version: 18.0.0
      digest: ${D2}
      urls: []
generated: "2024-01-01T00:00:00Z"
`

describe('repository URLs', () => {
  it('finds index.yaml with or without a trailing slash', () => {
    expect(indexUrl('http://h:8080/stable')).toBe('http://h:8080/stable/index.yaml')
    expect(indexUrl('http://h:8080/stable/')).toBe('http://h:8080/stable/index.yaml')
  })

  it('resolves relative chart URLs against the repository, keeps absolute ones', () => {
    expect(chartUrl('http://h/stable', 'charts/a-1.tgz')).toBe('http://h/stable/charts/a-1.tgz')
    expect(chartUrl('http://h/stable/', '/x/a-1.tgz')).toBe('http://h/x/a-1.tgz')
    expect(chartUrl('http://h/stable', 'https://cdn.test/a-1.tgz')).toBe('https://cdn.test/a-1.tgz')
  })
})

describe('findChart', () => {
  const index = parseRepoIndex(INDEX, 'index.yaml')

  it('finds a version, its absolute URL and digest (with or without the sha256: prefix)', () => {
    const a = findChart(index, 'http://h/stable', 'nginx', '15.1.0')
    expect(a.url).toBe('http://h/stable/charts/nginx-15.1.0.tgz')
    expect(a.digest).toBe(`sha256:${D1}`)
    expect(a.entry.appVersion).toBe('1.25.3')
    const b = findChart(index, 'http://h/stable', 'nginx', 'v15.0.2')
    expect(b.url).toBe('https://cdn.example.test/nginx-15.0.2.tgz')
    expect(b.digest).toBe(`sha256:${D2}`)
  })

  it('lists the available versions when the version is missing', () => {
    expect(() => findChart(index, 'http://h/stable', 'nginx', '1.2.3')).toThrow(FailureError)
    try {
      findChart(index, 'http://h/stable', 'nginx', '1.2.3')
    } catch (err) {
      expect((err as FailureError).message).toBe('chart nginx has no version 1.2.3 in the repository http://h/stable')
      expect((err as FailureError).details).toEqual(['available versions: 15.1.0, 15.0.2, 9.0.0'])
    }
  })

  it('lists the charts when the chart is missing', () => {
    try {
      findChart(index, 'http://h/stable', 'postgres', '1.0.0')
      expect.unreachable()
    } catch (err) {
      expect((err as FailureError).message).toContain('chart postgres is not in the repository http://h/stable')
      expect((err as FailureError).details).toEqual(['it has: nginx, redis'])
    }
  })

  it('refuses a version without a digest or without a URL', () => {
    expect(() => findChart(index, 'http://h/stable', 'nginx', '9.0.0')).toThrow(/no sha256 digest/)
    expect(() => findChart(index, 'http://h/stable', 'redis', '18.0.0')).toThrow(/no download URL/)
  })
})

describe('parseRepoIndex', () => {
  it('refuses what is not an index', () => {
    expect(() => parseRepoIndex('<html>', 'http://h/index.yaml')).toThrow(
      /http:\/\/h\/index.yaml is not a Helm repository index/,
    )
    expect(() => parseRepoIndex('a: [', 'x')).toThrow(/x is not valid YAML/)
    expect(() => parseRepoIndex('entries: {a: 1}', 'x')).toThrow(/entries.a is not a list/)
  })
})

describe('compareVersions', () => {
  it('orders like SemVer', () => {
    const sorted = ['1.10.0', '1.2.0', '1.2.0-rc.1', '1.2.0-rc.10', '1.2.0-alpha', 'v2.0.0', '0.9'].sort(
      compareVersions,
    )
    expect(sorted).toEqual(['0.9', '1.2.0-alpha', '1.2.0-rc.1', '1.2.0-rc.10', '1.2.0', '1.10.0', 'v2.0.0'])
  })
})
