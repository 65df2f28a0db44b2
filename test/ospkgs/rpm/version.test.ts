import {execFileSync} from 'node:child_process'

import {describe, expect, it} from 'vitest'

import {compareEvr, parseEvr, rpmvercmp} from '../../../src/lib/ospkgs/rpm/version.js'

// rpm's own cases (tests/rpmvercmp.at in rpm's source), tilde and caret included.
const CASES: [string, string, number][] = [
  ['1.0', '1.0', 0],
  ['1.0', '2.0', -1],
  ['2.0', '1.0', 1],
  ['2.0.1', '2.0.1', 0],
  ['2.0', '2.0.1', -1],
  ['2.0.1', '2.0', 1],
  ['2.0.1a', '2.0.1a', 0],
  ['2.0.1a', '2.0.1', 1],
  ['2.0.1', '2.0.1a', -1],
  ['5.5p1', '5.5p1', 0],
  ['5.5p1', '5.5p2', -1],
  ['5.5p2', '5.5p1', 1],
  ['5.5p10', '5.5p10', 0],
  ['5.5p1', '5.5p10', -1],
  ['5.5p10', '5.5p1', 1],
  ['10xyz', '10.1xyz', -1],
  ['10.1xyz', '10xyz', 1],
  ['xyz10', 'xyz10', 0],
  ['xyz10', 'xyz10.1', -1],
  ['xyz10.1', 'xyz10', 1],
  ['xyz.4', 'xyz.4', 0],
  ['xyz.4', '8', -1],
  ['8', 'xyz.4', 1],
  ['xyz.4', '2', -1],
  ['2', 'xyz.4', 1],
  ['5.5p2', '5.6p1', -1],
  ['5.6p1', '5.5p2', 1],
  ['5.6p1', '6.5p1', -1],
  ['6.5p1', '5.6p1', 1],
  ['6.0.rc1', '6.0', 1],
  ['6.0', '6.0.rc1', -1],
  ['10b2', '10a1', 1],
  ['10a2', '10b2', -1],
  ['1.0aa', '1.0aa', 0],
  ['1.0a', '1.0aa', -1],
  ['1.0aa', '1.0a', 1],
  ['10.0001', '10.0001', 0],
  ['10.0001', '10.1', 0],
  ['10.1', '10.0001', 0],
  ['10.0001', '10.0039', -1],
  ['10.0039', '10.0001', 1],
  ['4.999.9', '5.0', -1],
  ['5.0', '4.999.9', 1],
  ['20101121', '20101121', 0],
  ['20101121', '20101122', -1],
  ['20101122', '20101121', 1],
  ['2_0', '2_0', 0],
  ['2.0', '2_0', 0],
  ['2_0', '2.0', 0],
  ['a', 'a', 0],
  ['a+', 'a+', 0],
  ['a+', 'a_', 0],
  ['a_', 'a+', 0],
  ['+a', '+a', 0],
  ['+a', '_a', 0],
  ['_a', '+a', 0],
  ['+_', '+_', 0],
  ['_+', '+_', 0],
  ['_+', '_+', 0],
  ['+', '_', 0],
  ['_', '+', 0],
  ['1.0~rc1', '1.0~rc1', 0],
  ['1.0~rc1', '1.0', -1],
  ['1.0', '1.0~rc1', 1],
  ['1.0~rc1', '1.0~rc2', -1],
  ['1.0~rc2', '1.0~rc1', 1],
  ['1.0~rc1~git123', '1.0~rc1~git123', 0],
  ['1.0~rc1~git123', '1.0~rc1', -1],
  ['1.0~rc1', '1.0~rc1~git123', 1],
  ['1.0^', '1.0^', 0],
  ['1.0^', '1.0', 1],
  ['1.0', '1.0^', -1],
  ['1.0^git1', '1.0^git1', 0],
  ['1.0^git1', '1.0', 1],
  ['1.0', '1.0^git1', -1],
  ['1.0^git1', '1.0^git2', -1],
  ['1.0^git2', '1.0^git1', 1],
  ['1.0^git1', '1.01', -1],
  ['1.01', '1.0^git1', 1],
  ['1.0^20160101', '1.0^20160101', 0],
  ['1.0^20160101', '1.0.1', -1],
  ['1.0.1', '1.0^20160101', 1],
  ['1.0^20160101^git1', '1.0^20160101^git1', 0],
  ['1.0^20160102', '1.0^20160101^git1', 1],
  ['1.0^20160101^git1', '1.0^20160102', -1],
  ['1.0~rc1^git1', '1.0~rc1^git1', 0],
  ['1.0~rc1^git1', '1.0~rc1', 1],
  ['1.0~rc1', '1.0~rc1^git1', -1],
  ['1.0^git1~pre', '1.0^git1~pre', 0],
  ['1.0^git1', '1.0^git1~pre', 1],
  ['1.0^git1~pre', '1.0^git1', -1],
  // Long numeric segments do not overflow.
  ['123456789012345678901234567890', '123456789012345678901234567891', -1],
]

describe('rpmvercmp', () => {
  it.each(CASES)('rpmvercmp(%s, %s) = %i', (a, b, want) => {
    expect(rpmvercmp(a, b)).toBe(want)
  })

  it('agrees with the rpm on this machine on every case', () => {
    // One rpm process prints rpm.vercmp for the whole table.
    const lua = CASES.map(([a, b]) => `print(rpm.vercmp("${a}", "${b}") .. ",")`).join(' ')
    const out = execFileSync('rpm', ['--eval', `%{lua: ${lua}}`], {encoding: 'utf8'})
    // rpm's Lua print() adds no newline.
    const got = out.trim().split(',').filter(Boolean).map(Number)
    expect(got).toEqual(CASES.map(([a, b]) => rpmvercmp(a, b)))
  })
})

describe('compareEvr', () => {
  it('orders by epoch first, then version, then release', () => {
    expect(compareEvr(parseEvr('1:1.0-1'), parseEvr('2.0-1'))).toBe(1)
    expect(compareEvr(parseEvr('1.0-2'), parseEvr('1.0-10'))).toBe(-1)
    expect(compareEvr(parseEvr('1.0-1.el9'), parseEvr('1.0-1.el9'))).toBe(0)
  })

  it('leaves the release out when one side has none, as a dependency match does', () => {
    expect(compareEvr(parseEvr('1.2'), parseEvr('1.2-7'))).toBe(0)
    expect(compareEvr(parseEvr('1.2-7'), parseEvr('1.3'))).toBe(-1)
  })

  it('parses epoch, version and release', () => {
    expect(parseEvr('3:1.2.3-4.el9')).toEqual({epoch: 3, version: '1.2.3', release: '4.el9'})
    expect(parseEvr('1.2')).toEqual({epoch: 0, version: '1.2'})
  })
})
