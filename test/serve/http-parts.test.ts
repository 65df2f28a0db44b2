import {describe, expect, it} from 'vitest'

import {UsageError} from '../../src/lib/errors.js'
import {defaultAdvertiseUrl, parseListen} from '../../src/lib/serve/listen.js'
import {checkAdvertiseUrl, containerdHostsFiles} from '../../src/lib/serve/mirror-config.js'
import {parseRange} from '../../src/lib/serve/range.js'

describe('parseRange', () => {
  it('reads a single byte range of a body, clamped to its size', () => {
    expect(parseRange(undefined, 100)).toBeUndefined()
    expect(parseRange('bytes=0-9', 100)).toEqual({start: 0, end: 9})
    expect(parseRange('bytes=90-', 100)).toEqual({start: 90, end: 99})
    expect(parseRange('bytes=90-500', 100)).toEqual({start: 90, end: 99})
    expect(parseRange('bytes=-10', 100)).toEqual({start: 90, end: 99})
    expect(parseRange('bytes=-500', 100)).toEqual({start: 0, end: 99})
  })
  it('is unsatisfiable past the end; ignores what it does not read (the whole body is sent)', () => {
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable')
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable')
    expect(parseRange('bytes=0-', 0)).toBe('unsatisfiable')
    expect(parseRange('bytes=5-1', 100)).toBeUndefined()
    expect(parseRange('bytes=0-1,5-6', 100)).toBeUndefined()
    expect(parseRange('items=0-1', 100)).toBeUndefined()
  })
})

describe('--listen and the advertised URL', () => {
  it('takes ADDR:PORT, [V6]:PORT and :PORT', () => {
    expect(parseListen('127.0.0.1:5000')).toMatchObject({host: '127.0.0.1', port: 5000})
    expect(parseListen('[::1]:5001')).toMatchObject({host: '::1', port: 5001})
    expect(parseListen(':5002')).toMatchObject({host: '0.0.0.0', port: 5002})
    for (const bad of ['5000', 'host', 'a:b', '1.2.3.4:70000', '::1:5000'])
      expect(() => parseListen(bad), bad).toThrow(UsageError)
  })
  it('advertises the listen address, never a wildcard', () => {
    expect(defaultAdvertiseUrl(parseListen('127.0.0.1:5000'), false)).toBe('http://127.0.0.1:5000')
    expect(defaultAdvertiseUrl(parseListen('[::1]:5000'), true)).toBe('https://[::1]:5000')
    expect(defaultAdvertiseUrl(parseListen('0.0.0.0:5000'), false)).not.toContain('0.0.0.0')
  })
})

describe('containerd hosts.toml', () => {
  it('one file per source registry, Docker Hub at its API host', () => {
    expect(containerdHostsFiles(['docker.io', '127.0.0.1:5001'], 'http://seed:5000')).toEqual([
      {
        registry: '127.0.0.1:5001',
        path: '127.0.0.1:5001/hosts.toml',
        content:
          'server = "https://127.0.0.1:5001"\n\n[host."http://seed:5000"]\n  capabilities = ["pull", "resolve"]\n',
      },
      {
        registry: 'docker.io',
        path: 'docker.io/hosts.toml',
        content:
          'server = "https://registry-1.docker.io"\n\n[host."http://seed:5000"]\n  capabilities = ["pull", "resolve"]\n',
      },
    ])
  })
  it('--advertise is a server URL without a path', () => {
    expect(checkAdvertiseUrl('http://seed:5000/')).toBe('http://seed:5000')
    expect(() => checkAdvertiseUrl('http://seed:5000/v2')).toThrow(UsageError)
    expect(() => checkAdvertiseUrl('seed:5000')).toThrow(UsageError)
  })
})
