import {describe, expect, it} from 'vitest'

import {parseChallenges, repositoryScope} from '../../src/lib/registry/challenge.js'

describe('parseChallenges', () => {
  it('reads a Bearer challenge with a quoted scope holding a comma', () => {
    const [c] = parseChallenges(
      'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
    )
    expect(c).toEqual({
      scheme: 'bearer',
      params: {realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push'},
    })
  })

  it('reads Basic with a realm, and several challenges in one header', () => {
    const all = parseChallenges('Basic realm="Registry Realm", Bearer realm="https://t/x",error="insufficient_scope"')
    expect(all.map((c) => c.scheme)).toEqual(['basic', 'bearer'])
    expect(all[0].params.realm).toBe('Registry Realm')
    expect(all[1].params).toEqual({realm: 'https://t/x', error: 'insufficient_scope'})
  })

  it('takes unquoted values and escaped quotes', () => {
    const [c] = parseChallenges('Bearer realm=https://t/token, service=svc, note="a \\"b\\""')
    expect(c.params).toEqual({realm: 'https://t/token', service: 'svc', note: 'a "b"'})
  })

  it('gives nothing for a missing header', () => {
    expect(parseChallenges(undefined)).toEqual([])
  })

  it('formats repository scopes', () => {
    expect(repositoryScope('library/nginx', ['pull', 'push'])).toBe('repository:library/nginx:pull,push')
  })
})
