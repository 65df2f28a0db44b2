import {describe, expect, it} from 'vitest'

import {compareDebVersions, satisfiesVersion} from '../../src/lib/ospkgs/apt/version.js'

// Cases from Debian policy 5.6.12 and dpkg's own tests (lib/dpkg/t/t-version.c).
const ORDERED: [string, string][] = [
  ['~~', '~~a'],
  ['~~a', '~'],
  ['~', ''],
  ['', 'a'],
  ['1.0~rc1', '1.0'],
  ['1.0', '1.0+b1'],
  ['1.0', '1.0.1'],
  ['1.0', '1.0a'],
  ['1.0a', '1.0b'],
  ['1.0-1', '1.0-2'],
  ['1.0-9', '1.0-10'],
  ['2.3-1', '2.30-1'],
  ['9.9', '1:0.1'],
  ['1:1.0', '2:0.1'],
  ['1.0-1', '1.0-1ubuntu1'],
  ['1.0-1~bpo1', '1.0-1'],
  ['0.9', '0.10'],
  ['1.2.3-1', '1.2.3.0-1'],
  ['a', 'b+'],
  ['1.0+dfsg', '1.0.1'],
]

describe('Debian version comparison', () => {
  it.each(ORDERED)('%s < %s', (a, b) => {
    expect(compareDebVersions(a, b)).toBeLessThan(0)
    expect(compareDebVersions(b, a)).toBeGreaterThan(0)
  })

  it.each([
    ['1.01', '1.1'],
    ['0:1.0', '1.0'],
    ['1.0-0', '1.0-0'],
    ['00', '0'],
  ])('%s == %s', (a, b) => expect(compareDebVersions(a, b)).toBe(0))

  it('constraints: << <= = >= >> and the old < and >', () => {
    expect(satisfiesVersion('2.36-9', '>=', '2.34')).toBe(true)
    expect(satisfiesVersion('2.36-9', '<<', '2.36-9')).toBe(false)
    expect(satisfiesVersion('2.36-9', '<=', '2.36-9')).toBe(true)
    expect(satisfiesVersion('1:2.0', '>>', '3.0')).toBe(true)
    expect(satisfiesVersion('1.0~rc1', '>=', '1.0')).toBe(false)
    // dpkg: an absent revision equals -0.
    expect(satisfiesVersion('1.0', '=', '1.0-0')).toBe(true)
  })
})
