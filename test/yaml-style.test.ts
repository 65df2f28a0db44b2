import {describe, expect, it} from 'vitest'

import {detectStyle} from '../src/lib/yaml-style.js'

describe('detectStyle', () => {
  it('detects indentation', () => {
    expect(detectStyle('a:\n    b: 1\n')).toEqual({indent: 4, indentSeq: true})
    expect(detectStyle('a:\n  b:\n  - 1\n')).toEqual({indent: 2, indentSeq: false})
  })
})
