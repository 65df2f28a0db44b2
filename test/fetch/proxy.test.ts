import {describe, expect, it} from 'vitest'

import {bypassesProxy} from '../../src/lib/fetch/proxy.js'

describe('NO_PROXY', () => {
  const u = (s: string) => new URL(s)
  it('matches hosts, domain suffixes, ports and *', () => {
    expect(bypassesProxy(u('https://registry.example.com/v2/'), 'example.com')).toBe(true)
    expect(bypassesProxy(u('https://registry.example.com/v2/'), '.example.com')).toBe(true)
    expect(bypassesProxy(u('https://example.com/'), '.example.com')).toBe(true)
    expect(bypassesProxy(u('https://notexample.com/'), 'example.com')).toBe(false)
    expect(bypassesProxy(u('http://127.0.0.1:5000/'), 'localhost,127.0.0.1')).toBe(true)
    expect(bypassesProxy(u('http://127.0.0.1:5000/'), '127.0.0.1:5001')).toBe(false)
    expect(bypassesProxy(u('http://127.0.0.1:5000/'), '127.0.0.1:5000')).toBe(true)
    expect(bypassesProxy(u('https://a.b/'), '*')).toBe(true)
    expect(bypassesProxy(u('https://a.b/'), '')).toBe(false)
  })
})
