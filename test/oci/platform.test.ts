import {describe, expect, it} from 'vitest'

import {
  formatPlatform,
  indexPlatforms,
  isRunnableDescriptor,
  parsePlatform,
  platformMatches,
} from '../../src/lib/oci/platform.js'

describe('platforms', () => {
  it('parses and formats', () => {
    expect(parsePlatform('linux/arm/v7')).toEqual({os: 'linux', architecture: 'arm', variant: 'v7'})
    expect(formatPlatform(parsePlatform('linux/amd64'))).toBe('linux/amd64')
    expect(() => parsePlatform('linux')).toThrow(/os\/arch/)
    expect(() => parsePlatform('linux//v7')).toThrow()
  })

  it('matches any variant when none is asked, and normalizes arm64/v8', () => {
    expect(platformMatches(parsePlatform('linux/arm'), {os: 'linux', architecture: 'arm', variant: 'v6'})).toBe(true)
    expect(platformMatches(parsePlatform('linux/arm/v7'), {os: 'linux', architecture: 'arm', variant: 'v6'})).toBe(
      false,
    )
    expect(platformMatches(parsePlatform('linux/arm64/v8'), {os: 'linux', architecture: 'arm64'})).toBe(true)
    expect(platformMatches(parsePlatform('linux/amd64'), {os: 'windows', architecture: 'amd64'})).toBe(false)
  })

  it('leaves attestations out of the platforms of an index', () => {
    const d = (os: string, architecture: string, annotations?: Record<string, string>) => ({
      mediaType: 'x',
      digest: 'sha256:0',
      size: 1,
      platform: {os, architecture},
      annotations,
    })
    const list = [
      d('linux', 'amd64'),
      d('unknown', 'unknown', {'vnd.docker.reference.type': 'attestation-manifest'}),
      d('linux', 'arm64'),
      d('linux', 'amd64'),
    ]
    expect(indexPlatforms(list)).toEqual(['linux/amd64', 'linux/arm64'])
    expect(isRunnableDescriptor(list[1])).toBe(false)
  })
})
