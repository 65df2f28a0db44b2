import {describe, expect, it} from 'vitest'

import {provideMeets} from '../../../src/lib/ospkgs/rpm/dependency.js'
import {parseRich} from '../../../src/lib/ospkgs/rpm/rich.js'
import {parseEvr} from '../../../src/lib/ospkgs/rpm/version.js'

const dep = (name: string) => ({op: 'dep', dep: {name}})

describe('parseRich', () => {
  it('parses or, and, with, without', () => {
    expect(parseRich('(a or b or c)')).toEqual({op: 'or', terms: [dep('a'), dep('b'), dep('c')]})
    expect(parseRich('(a and b)')).toEqual({op: 'and', terms: [dep('a'), dep('b')]})
    expect(parseRich('(a with b)')).toEqual({op: 'with', terms: [dep('a'), dep('b')]})
    expect(parseRich('(a without b)')).toEqual({op: 'without', left: dep('a'), right: dep('b')})
  })

  it('parses if, if-else, unless, unless-else', () => {
    expect(parseRich('(a if b)')).toEqual({op: 'if', then: dep('a'), cond: dep('b')})
    expect(parseRich('(a if b else c)')).toEqual({op: 'if', then: dep('a'), cond: dep('b'), else: dep('c')})
    expect(parseRich('(a unless b)')).toEqual({op: 'unless', then: dep('a'), cond: dep('b')})
    expect(parseRich('(a unless b else c)')).toEqual({op: 'unless', then: dep('a'), cond: dep('b'), else: dep('c')})
  })

  it('parses versions, nesting and names with parentheses', () => {
    expect(parseRich('(perl(Foo::Bar) >= 1:2.0-3 or (libx.so.1()(64bit) and c < 2))')).toEqual({
      op: 'or',
      terms: [
        {op: 'dep', dep: {name: 'perl(Foo::Bar)', flags: 'GE', evr: {epoch: 1, version: '2.0', release: '3'}}},
        {
          op: 'and',
          terms: [dep('libx.so.1()(64bit)'), {op: 'dep', dep: {name: 'c', flags: 'LT', evr: {epoch: 0, version: '2'}}}],
        },
      ],
    })
  })

  it('refuses mixed operators without parentheses, as rpm does, and broken text', () => {
    expect(() => parseRich('(a and b or c)')).toThrow(/"or" cannot follow here/)
    expect(() => parseRich('(a or)')).toThrow(/expected a name/)
    expect(() => parseRich('(a or b')).toThrow(/expected "\)"/)
    expect(() => parseRich('(a xor b)')).toThrow(/found "xor"/)
    expect(() => parseRich('(a >= )')).toThrow(/expected a version/)
  })
})

describe('provideMeets', () => {
  const p = (name: string, flags?: 'EQ' | 'GE' | 'LT' | 'LE' | 'GT', evr?: string) => ({
    name,
    flags,
    evr: evr ? parseEvr(evr) : undefined,
  })
  it('matches overlapping ranges as rpm does', () => {
    expect(provideMeets(p('a', 'EQ', '1.2-1'), p('a', 'GE', '1.0'))).toBe(true)
    expect(provideMeets(p('a', 'EQ', '0.9-1'), p('a', 'GE', '1.0'))).toBe(false)
    expect(provideMeets(p('a', 'EQ', '1.0-5'), p('a', 'EQ', '1.0'))).toBe(true)
    expect(provideMeets(p('a', 'EQ', '1.0-5'), p('a', 'LT', '1.0-5'))).toBe(false)
    expect(provideMeets(p('a', 'EQ', '1:0.1-1'), p('a', 'GT', '2.0'))).toBe(true)
    expect(provideMeets(p('a'), p('a', 'GE', '9'))).toBe(true)
    expect(provideMeets(p('a', 'EQ', '1'), p('b'))).toBe(false)
    expect(provideMeets(p('a', 'GE', '2'), p('a', 'LT', '3'))).toBe(true)
    expect(provideMeets(p('a', 'GE', '3'), p('a', 'LT', '3'))).toBe(false)
  })
})
