import {describe, expect, it} from 'vitest'

import {plural} from '../../src/lib/ui/table.js'

describe('plural', () => {
  it('says one or many, with a word that does not take an s given whole', () => {
    expect([plural(0, 'file'), plural(1, 'file'), plural(2, 'file')]).toEqual(['0 files', '1 file', '2 files'])
    expect([plural(1, 'binary', 'binaries'), plural(3, 'binary', 'binaries')]).toEqual(['1 binary', '3 binaries'])
  })
})
